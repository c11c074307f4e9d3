import type { WorkItem } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { decideDelivery } from "./decision.js";

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
