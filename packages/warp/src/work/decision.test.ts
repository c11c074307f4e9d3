import type { WorkItem } from "@loominal/protocol";
import { workItemSchema } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { claimRecord, decideDelivery, expiredRecord, iso, revise, without } from "./decision.js";

const NOW = Date.parse("2026-01-01T10:00:00.000Z");

function item(over: Partial<WorkItem> = {}): WorkItem {
  return {
    workId: "0".repeat(32),
    projectId: "p",
    taskId: "t",
    description: "d",
    capability: "typescript",
    boundary: "default",
    priority: 5,
    scope: "team",
    offeredBy: { agentId: "a".repeat(32), userId: "b".repeat(32) },
    status: "pending",
    attempts: 0,
    maxAttempts: 2,
    createdAt: "2026-01-01T09:00:00.000Z",
    updatedAt: "2026-01-01T09:00:00.000Z",
    ...over,
  };
}

function claimed(attempts: number, expiresAt: string, seq = 7, deliveryCount = 1): WorkItem {
  return item({
    status: "claimed",
    attempts,
    claim: {
      agentId: "c".repeat(32),
      claimId: "d".repeat(32),
      attempt: attempts,
      claimedAt: "2026-01-01T09:59:00.000Z",
      expiresAt,
      seq,
      deliveryCount,
    },
  });
}

describe("the claim decision", () => {
  it("claims a pending item with attempts left; the sweep hands it back", () => {
    expect(decideDelivery(item(), { seq: 1, deliveryCount: 1 }, NOW, "claim")).toEqual({
      action: "claim",
      tookOver: false,
    });
    expect(decideDelivery(item(), { seq: 1, deliveryCount: 1 }, NOW, "sweep").action).toBe("release");
  });

  it("sends a pending item with no attempts left to the dead-letter queue", () => {
    expect(decideDelivery(item({ attempts: 2 }), { seq: 1, deliveryCount: 3 }, NOW, "claim").action).toBe(
      "dead",
    );
  });

  it("takes over a lapsed claim (a newer delivery of its message); the sweep expires it", () => {
    const cur = claimed(1, "2026-01-01T10:05:00.000Z");
    expect(decideDelivery(cur, { seq: 7, deliveryCount: 2 }, NOW, "claim")).toEqual({
      action: "claim",
      tookOver: true,
    });
    expect(decideDelivery(cur, { seq: 7, deliveryCount: 2 }, NOW, "sweep")).toEqual({ action: "expire" });
  });

  it("dead-letters a claim that lapsed on its last attempt, for claimer and sweep alike", () => {
    const cur = claimed(2, "2026-01-01T09:59:30.000Z");
    for (const role of ["claim", "sweep"] as const) {
      const d = decideDelivery(cur, { seq: 7, deliveryCount: 2 }, NOW, role);
      expect(d).toMatchObject({ action: "dead", events: ["expired"] });
    }
  });

  it("leaves the message of a live claim alone and drops a duplicate of it", () => {
    const cur = claimed(1, "2026-01-01T10:05:00.000Z");
    expect(decideDelivery(cur, { seq: 7, deliveryCount: 1 }, NOW, "claim").action).toBe("leave");
    expect(decideDelivery(cur, { seq: 9, deliveryCount: 1 }, NOW, "claim").action).toBe("ack");
    // A duplicate message counts as lapsed only once the ledger's own deadline passed.
    expect(
      decideDelivery(cur, { seq: 9, deliveryCount: 1 }, Date.parse(cur.claim?.expiresAt ?? ""), "claim"),
    ).toEqual({
      action: "claim",
      tookOver: true,
    });
  });

  it("acknowledges leftovers of finished items, repairs a missing dead letter, drops what has no record", () => {
    for (const status of ["completed", "cancelled", "discarded"] as const)
      expect(decideDelivery(item({ status }), { seq: 1, deliveryCount: 1 }, NOW, "claim").action).toBe("ack");
    const dead = item({ status: "dead", dead: { reason: "x", at: "2026-01-01T09:00:00.000Z" } });
    expect(decideDelivery(dead, { seq: 1, deliveryCount: 1 }, NOW, "claim").action).toBe("repair");
    expect(
      decideDelivery(
        { ...dead, dead: { reason: "x", at: "2026-01-01T09:00:00.000Z", dlqSeq: 4 } },
        { seq: 1, deliveryCount: 1 },
        NOW,
        "sweep",
      ).action,
    ).toBe("ack");
    expect(decideDelivery(undefined, { seq: 1, deliveryCount: 1 }, NOW, "claim").action).toBe("term");
  });
});

describe("records a transition writes", () => {
  it("stamps a claim with one time and a valid record", () => {
    const rec = claimRecord(
      item({ availableAt: "2026-01-01T09:30:00.000Z" }),
      { seq: 3, deliveryCount: 1 },
      "c".repeat(32),
      NOW,
      NOW - 1_000,
      30_000,
      false,
    );
    expect(workItemSchema.parse(rec)).toEqual(rec);
    expect(rec).not.toHaveProperty("availableAt");
    expect(rec.claim?.claimedAt).toBe("2026-01-01T10:00:00.000Z");
    expect(rec.updatedAt).toBe(rec.claim?.claimedAt);
    expect(rec.lastTransition?.at).toBe(rec.claim?.claimedAt);
    expect(rec.claim?.expiresAt).toBe("2026-01-01T10:00:29.000Z");
    expect(rec.claim?.claimId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("drops a lapsed claim when the item goes back to pending", () => {
    const back = expiredRecord(claimed(1, "2026-01-01T09:59:00.000Z"), "c".repeat(32), NOW);
    expect(back).not.toHaveProperty("claim");
    expect(back.status).toBe("pending");
    expect(workItemSchema.parse(back)).toEqual(back);
  });

  it("iso formats like toISOString, also for repeated and alternating times", () => {
    for (const ms of [NOW, NOW, NOW + 1, NOW, 0, NOW + 1, NOW + 30_000, NOW + 1, NOW + 30_000, NOW + 2, 0])
      expect(iso(ms)).toBe(new Date(ms).toISOString());
  });

  it("revise gives the record a spread would, field order included, and leaves the base alone", () => {
    const base = claimed(1, "2026-01-01T10:00:30.000Z");
    const before = JSON.stringify(base);
    const changes = {
      status: "completed" as const,
      result: { ok: true },
      finishedAt: "2026-01-01T10:00:01.000Z",
    };
    const rec = revise(base, changes);
    expect(JSON.stringify(rec)).toBe(JSON.stringify({ ...base, ...changes }));
    expect(JSON.stringify(base)).toBe(before);
    expect(rec).not.toBe(base);
    expect(workItemSchema.parse(rec)).toEqual(rec);
  });

  it("without copies only when a key is there", () => {
    const a = { x: 1, y: 2 };
    expect(without(a, "y")).toEqual({ x: 1 });
    expect(a).toEqual({ x: 1, y: 2 });
    const b: { x: number; y?: number } = { x: 1 };
    expect(without(b, "y")).toBe(b);
  });
});
