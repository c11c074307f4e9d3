import { ConfigError } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { isLoopbackHost, loadRunnerConfig } from "./env.js";

describe("runner configuration", () => {
  it("has defaults that need nothing set", () => {
    const c = loadRunnerConfig({});
    expect(c.port).toBe(3100);
    expect(c.host).toBe("127.0.0.1");
    expect(c.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(c.replicaId).toMatch(/^[a-z0-9][a-z0-9_-]{0,63}$/);
    expect(c.mock).toEqual({ latencyMs: 50, jitterMs: 25, rate429: 0, rate500: 0 });
    expect(c.replicaMaxRuns).toBe(c.maxConcurrentRuns);
    expect(loadRunnerConfig({ RUNNER_MAX_CONCURRENT_RUNS: "1024" }).replicaMaxRuns).toBe(1024);
    expect(loadRunnerConfig({ RUNNER_REPLICA_MAX_RUNS: "5" }).replicaMaxRuns).toBe(5);
    expect(c.authToken).toBeUndefined();
  });

  it("reads every variable it documents", () => {
    const c = loadRunnerConfig({
      NATS_URL: "nats://10.0.0.1:4333",
      RUNNER_PORT: "0",
      RUNNER_REPLICA_ID: "r-1",
      RUNNER_MAX_CONCURRENT_RUNS: "3",
      RUNNER_MAX_RUNS_PER_USER: "2",
      RUNNER_QUEUE_MAX: "0",
      RUNNER_MOCK_429_RATE: "0.3",
      RUNNER_AGENTS: "/tmp/agents.yaml",
    });
    expect(c).toMatchObject({
      port: 0,
      replicaId: "r-1",
      maxConcurrentRuns: 3,
      maxRunsPerUser: 2,
      queueMax: 0,
      agentsFile: "/tmp/agents.yaml",
    });
    expect(c.mock.rate429).toBe(0.3);
    expect(c.nats.servers).toEqual(["nats://10.0.0.1:4333"]);
  });

  it("names each bad variable and stops", () => {
    let err: unknown;
    try {
      loadRunnerConfig({ RUNNER_PORT: "http", RUNNER_MOCK_500_RATE: "2", RUNNER_REPLICA_ID: "Bad.Id" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/RUNNER_PORT is "http"/);
    expect(message).toMatch(/RUNNER_MOCK_500_RATE is "2"/);
    expect(message).toMatch(/RUNNER_REPLICA_ID is "Bad.Id"/);
  });

  it("requires an auth token unless it listens on loopback, and never echoes the token", () => {
    expect(() => loadRunnerConfig({ RUNNER_HOST: "0.0.0.0" })).toThrow(/RUNNER_AUTH_TOKEN is not set/);
    expect(() => loadRunnerConfig({ RUNNER_HOST: "0.0.0.0", RUNNER_AUTH_TOKEN: "short-secret" })).toThrow(
      /RUNNER_AUTH_TOKEN is invalid/,
    );
    try {
      loadRunnerConfig({ RUNNER_HOST: "0.0.0.0", RUNNER_AUTH_TOKEN: "short-secret" });
    } catch (e) {
      expect((e as Error).message).not.toContain("short-secret");
    }
    const c = loadRunnerConfig({ RUNNER_HOST: "0.0.0.0", RUNNER_AUTH_TOKEN: "a-long-enough-secret" });
    expect(c.authToken).toBe("a-long-enough-secret");
  });

  it("refuses a replica TTL that one late heartbeat would outlive", () => {
    expect(() =>
      loadRunnerConfig({ RUNNER_HEARTBEAT_INTERVAL_MS: "1000", RUNNER_REPLICA_TTL_MS: "1500" }),
    ).toThrow(/RUNNER_REPLICA_TTL_MS \(1500\) must be at least twice/);
  });

  it("knows loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["0.0.0.0", "10.0.0.1", "::", "example.com"]) expect(isLoopbackHost(h)).toBe(false);
  });
});

describe("docs", () => {
  it("docs/runner.md lists every variable with its default", async () => {
    const { readFileSync } = await import("node:fs");
    const { envTableMarkdown } = await import("@loominal/fabric");
    const { RUNNER_ENV } = await import("./env.js");
    const doc = readFileSync(new URL("../../../docs/runner.md", import.meta.url), "utf8");
    // Compared cell by cell: the formatter aligns the table's columns.
    const cells = (text: string) =>
      text
        .split("\n")
        .filter((l) => l.startsWith("| `"))
        .map((l) =>
          l
            .split("|")
            .map((c) => c.trim())
            .join("|"),
        );
    const wanted = cells(envTableMarkdown(RUNNER_ENV));
    const documented = cells(doc).filter((row) => wanted.some((w) => w.split("|")[1] === row.split("|")[1]));
    expect(documented).toEqual(wanted);
  });
});
