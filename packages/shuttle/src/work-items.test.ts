import type { WorkEvent, WorkItem } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { appendCheckpoint } from "./orchestrator.js";
import { AppliedStates, subtaskWorkId, workIdGeneration } from "./work-items.js";

const orchestration = {
  orchestrationId: "0123456789abcdef0123456789abcdef",
  createdAt: "2026-01-02T03:04:05.678Z",
};

function item(status: WorkItem["status"], updatedAt: string, attempts = 0): WorkItem {
  return {
    workId: subtaskWorkId(orchestration, "a"),
    projectId: "p",
    taskId: "t",
    description: "d",
    capability: "research",
    boundary: "default",
    priority: 5,
    scope: "team",
    offeredBy: { agentId: "0".repeat(32), userId: "u" },
    status,
    attempts,
    maxAttempts: 3,
    createdAt: updatedAt,
    updatedAt,
  };
}

function event(revision: number, it: WorkItem): WorkEvent {
  return {
    type: it.status === "completed" ? "completed" : it.status === "claimed" ? "claimed" : "offered",
    workId: it.workId,
    projectId: "p",
    at: it.updatedAt,
    agentId: "0".repeat(32),
    status: it.status,
    attempt: it.attempts,
    revision,
    capability: it.capability,
    boundary: it.boundary,
    taskId: it.taskId,
    item: it,
  };
}

describe("subtask work ids", () => {
  it("are 32 hex, start with the orchestration's creation time and are the same for the same subtask", () => {
    const id = subtaskWorkId(orchestration, "a");
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(Number.parseInt(id.slice(0, 12), 16)).toBe(Date.parse(orchestration.createdAt));
    expect(subtaskWorkId({ ...orchestration }, "a")).toBe(id);
    expect(subtaskWorkId(orchestration, "b")).not.toBe(id);
    expect(subtaskWorkId(orchestration, "a", 1)).not.toBe(id);
    expect(workIdGeneration(orchestration, "a", subtaskWorkId(orchestration, "a", 3))).toBe(3);
    expect(workIdGeneration(orchestration, "a", "f".repeat(32))).toBeUndefined();
  });
});

describe("AppliedStates", () => {
  it("orders states by ledger revision, applying a newer state whose timestamp is in the past", () => {
    const applied = new AppliedStates();
    const offered = item("pending", "2026-01-02T03:05:00.000Z");
    expect(applied.onRead(offered)).toBe(true);
    // The offered event of the state just read teaches its revision.
    expect(applied.onEvent(event(7, offered))).toBe("apply");
    // A worker whose clock is a minute behind claims and completes it.
    expect(applied.onEvent(event(8, item("claimed", "2026-01-02T03:04:01.000Z", 1)))).toBe("apply");
    expect(applied.onEvent(event(9, item("completed", "2026-01-02T03:04:02.000Z", 1)))).toBe("apply");
    // A late duplicate of the claim is older by revision, whatever its timestamp says.
    expect(applied.onEvent(event(8, item("claimed", "2026-01-02T03:09:00.000Z", 1)))).toBe("skip");
  });

  it("asks the ledger when it cannot place an event, and never lets a read undo a final state", () => {
    const applied = new AppliedStates();
    expect(applied.onRead(item("completed", "2026-01-02T03:04:02.000Z", 1))).toBe(true);
    expect(applied.onEvent(event(8, item("claimed", "2026-01-02T03:04:01.000Z", 1)))).toBe("reread");
    expect(applied.onRead(item("claimed", "2026-01-02T03:04:01.000Z", 1))).toBe(false);
  });
});

describe("appendCheckpoint", () => {
  it("keeps the newest and counts the dropped ones in a first entry", () => {
    let list: ReturnType<typeof appendCheckpoint> = [];
    for (let i = 0; i < 12; i++)
      list = appendCheckpoint(list, { at: `t${i}`, phase: "execution", note: `${i}` }, 5);
    expect(list.map((c) => c.note)).toEqual([
      "[shuttle] 8 earlier checkpoints were dropped; the record keeps the newest 4",
      "8",
      "9",
      "10",
      "11",
    ]);
    expect(list[0]?.at).toBe("t7");
  });
});
