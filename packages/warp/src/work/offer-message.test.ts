import { encodeJson } from "@loominal/fabric";
import { type WorkItem, workOfferMessageSchema } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { offerMessageData } from "./recovery.js";

const item: WorkItem = {
  workId: "0123456789abcdef0123456789abcdef",
  projectId: "p",
  taskId: 'task "quoted" ✓',
  description: "line\nbreak",
  capability: "typescript",
  boundary: "default",
  priority: 5,
  contextData: { file: "a.ts", nested: { n: 1 } },
  scope: "team",
  offeredBy: { agentId: "a".repeat(32), userId: "u" },
  status: "pending",
  attempts: 0,
  maxAttempts: 3,
  createdAt: "2026-01-01T09:00:00.000Z",
  updatedAt: "2026-01-01T09:00:00.000Z",
  lastTransition: { events: ["offered"], agentId: "a".repeat(32), at: "2026-01-01T09:00:00.000Z" },
};

describe("offer message bytes", () => {
  it("are the same whether the item's JSON is passed in or encoded again", () => {
    const entry = { item, revision: 42 };
    const reused = offerMessageData(entry, JSON.stringify(item));
    expect(Buffer.from(reused).toString("utf8")).toBe(
      Buffer.from(encodeJson({ workId: item.workId, revision: 42, item })).toString("utf8"),
    );
    expect(Buffer.from(offerMessageData(entry)).equals(Buffer.from(reused))).toBe(true);
    const parsed = workOfferMessageSchema.parse(JSON.parse(Buffer.from(reused).toString("utf8")));
    expect(parsed).toEqual({ workId: item.workId, revision: 42, item });
  });
});
