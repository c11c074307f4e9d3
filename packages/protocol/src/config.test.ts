import { describe, expect, it } from "vitest";
import { projectFileSchema } from "./config.js";

describe(".loominal.json schema", () => {
  it("fills every default from an empty file", () => {
    const cfg = projectFileSchema.parse({});
    expect(cfg.warp.channels.map((c) => c.name)).toEqual(["roadmap", "parallel-work", "errors"]);
    expect(cfg.warp.work).toEqual({
      ackWaitMs: 300_000,
      maxAttempts: 3,
      retryBackoffMs: 1_000,
      retentionDays: 7,
      dlqMaxAgeMs: 2_592_000_000,
    });
    expect(cfg.warp.heartbeatIntervalMs).toBe(15_000);
    expect(cfg.pattern.ephemeralTtlMs).toBe(86_400_000);
  });

  it("names the bad key and refuses unknown ones", () => {
    const bad = projectFileSchema.safeParse({ warp: { work: { maxAttempts: 0 } }, typo: 1 });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((i) => i.path.join("."));
    expect(paths).toContain("warp.work.maxAttempts");
    expect(bad.error?.issues.some((i) => i.message.includes("typo"))).toBe(true);
  });

  it("applies channel defaults per channel", () => {
    const cfg = projectFileSchema.parse({ warp: { channels: [{ name: "ops", maxAgeMs: 1000 }] } });
    expect(cfg.warp.channels).toEqual([
      { name: "ops", maxAgeMs: 1000, maxMessages: 10_000, maxBytes: 10_485_760 },
    ]);
  });
});

describe("sections of services to come", () => {
  it("accepts weft, runner and agent sections as objects and refuses anything else there", () => {
    const cfg = projectFileSchema.parse({ weft: { port: 8080 }, runner: {}, agent: { command: "claude" } });
    expect(cfg.weft).toEqual({ port: 8080 });
    expect(cfg.agent).toEqual({ command: "claude" });
    const bad = projectFileSchema.safeParse({ runner: "fast" });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(["runner"]);
  });

  it("still refuses a typo at the top level", () => {
    const bad = projectFileSchema.safeParse({ wefts: {} });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain("wefts");
  });
});
