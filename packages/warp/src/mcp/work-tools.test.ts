import { Fabric } from "@loominal/fabric";
import { createToolServer } from "@loominal/mcp-kit";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { connectInMemory, freePort, NatsServer, type TestClient, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkQueue } from "../work/index.js";
import { workTools } from "./tools/work-tools.js";

let server: NatsServer;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await server?.stop();
});

async function client(projectId: string, url = server.url, connect = true): Promise<TestClient> {
  const fabric = connect
    ? await Fabric.connect({ nats: { servers: [url] } })
    : Fabric.start({ nats: { servers: [url] } });
  const work = new WorkQueue({
    fabric,
    projectId,
    agentId: randomId(),
    userId: randomId(),
    settings: { ...warpConfigSchema.parse({}).work, ackWaitMs: 1_000, retryBackoffMs: 50 },
    connectTimeoutMs: 300,
  });
  const c = await connectInMemory(
    createToolServer(
      { name: "warp-work-test", version: "0.0.0" },
      workTools({ work, ready: async () => {} }),
    ),
  );
  cleanups.push(async () => {
    await c.close();
    await work.close();
    await fabric.close();
  });
  return c;
}

const TOOL_NAMES = [
  "warp_work_broadcast",
  "warp_work_claim",
  "warp_work_progress",
  "warp_work_complete",
  "warp_work_fail",
  "warp_work_get",
  "warp_work_list",
  "warp_work_queue_status",
  "warp_dlq_list",
  "warp_dlq_retry",
  "warp_dlq_discard",
];

function structured<T = Record<string, unknown>>(outcome: {
  structured: Record<string, unknown> | undefined;
}): T {
  expect(outcome.structured).toBeDefined();
  return outcome.structured as T;
}

function errorCode(outcome: { isError: boolean; error?: { code: string } | undefined }): string | undefined {
  expect(outcome.isError).toBe(true);
  return outcome.error?.code;
}

interface Item {
  workId: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  result?: unknown;
  claim?: { expiresAt: string; progressNote?: string };
}

describe("work tools over MCP", () => {
  it("lists every work tool with an input and an output schema", async () => {
    const c = await client(uniqueProjectId());
    const tools = await c.listTools();
    expect(tools.map((t) => t.name)).toEqual(TOOL_NAMES);
    for (const t of tools) {
      expect(t.inputSchema).toMatchObject({ type: "object" });
      expect(t.outputSchema).toMatchObject({ type: "object" });
    }
  });

  it("broadcasts, claims, extends and completes an item", async () => {
    const c = await client(uniqueProjectId());
    const offered = await c.call("warp_work_broadcast", {
      taskId: "T-1",
      description: "Write the parser",
      capability: "typescript",
      priority: 8,
      contextData: { files: ["parser.ts"] },
    });
    expect(offered.isError).toBe(false);
    expect(offered.text).toContain("Offered work");
    const { workId } = structured<{ workId: string }>(offered);

    const claimed = await c.call("warp_work_claim", { capability: "typescript", timeoutMs: 2_000 });
    const claim = structured<{ claimed: boolean; item: Item }>(claimed);
    expect(claim.claimed).toBe(true);
    expect(claim.item.workId).toBe(workId);
    expect(claimed.text).toContain("Write the parser");

    const progressed = await c.call("warp_work_progress", { workId, note: "tokenizer done" });
    expect(structured<{ item: Item }>(progressed).item.claim?.progressNote).toBe("tokenizer done");
    expect(progressed.text).toContain("extended until");

    const completed = await c.call("warp_work_complete", { workId, result: { pr: 42 } });
    expect(structured<{ item: Item }>(completed).item).toMatchObject({
      status: "completed",
      result: { pr: 42 },
    });

    const got = await c.call("warp_work_get", { workId });
    expect(structured<{ item: Item }>(got).item.status).toBe("completed");
    expect(got.text).toContain("completed");

    const listed = await c.call("warp_work_list", { capability: "typescript", status: ["completed"] });
    const list = structured<{ items: Item[]; count: number; hasMore: boolean }>(listed);
    expect(list.items.map((i) => i.workId)).toEqual([workId]);
    expect(list).toMatchObject({ count: 1, hasMore: false });

    const status = await c.call("warp_work_queue_status", { capability: "typescript" });
    expect(structured<{ capabilities: unknown[] }>(status).capabilities).toEqual([
      expect.objectContaining({ capability: "typescript", queued: 0, inFlight: 0, dead: 0 }),
    ]);

    const empty = await c.call("warp_work_claim", { capability: "typescript", timeoutMs: 0 });
    expect(structured<{ claimed: boolean }>(empty).claimed).toBe(false);
    expect(empty.text).toContain("No typescript");
  });

  it("fails an item into the dead-letter queue, lists, retries and discards dead letters", async () => {
    const c = await client(uniqueProjectId());
    const ids: string[] = [];
    for (const taskId of ["keep", "drop"]) {
      const o = await c.call("warp_work_broadcast", {
        taskId,
        description: taskId,
        capability: "ops",
        scope: "team",
      });
      ids.push(structured<{ workId: string }>(o).workId);
    }
    for (let i = 0; i < 2; i++) {
      const claim = structured<{ item: Item }>(
        await c.call("warp_work_claim", { capability: "ops", timeoutMs: 2_000 }),
      );
      const failed = await c.call("warp_work_fail", {
        workId: claim.item.workId,
        reason: "disk full",
        retryable: false,
      });
      expect(structured<{ deadLettered: boolean }>(failed).deadLettered).toBe(true);
      expect(failed.text).toContain("dead-letter");
    }
    const listed = await c.call("warp_dlq_list", { capability: "ops" });
    const letters = structured<{ letters: Array<{ reason: string; item: Item }>; count: number }>(listed);
    expect(letters.count).toBe(2);
    expect(letters.letters.map((l) => l.item.workId).sort()).toEqual([...ids].sort());
    expect(letters.letters[0]?.reason).toContain("disk full");

    const [keep, drop] = ids as [string, string];
    const retried = await c.call("warp_dlq_retry", { workId: keep, resetAttempts: true });
    expect(structured<{ item: Item }>(retried).item).toMatchObject({ status: "pending", attempts: 0 });
    const discarded = await c.call("warp_dlq_discard", { workId: drop });
    expect(structured<{ item: Item }>(discarded).item.status).toBe("discarded");
    expect(structured<{ count: number }>(await c.call("warp_dlq_list", {})).count).toBe(0);

    const again = structured<{ item: Item }>(
      await c.call("warp_work_claim", { capability: "ops", timeoutMs: 2_000 }),
    );
    expect(again.item.workId).toBe(keep);
    const retry = await c.call("warp_work_fail", { workId: keep, reason: "flaky" });
    expect(structured<{ item: Item; deadLettered: boolean }>(retry)).toMatchObject({
      deadLettered: false,
      item: { status: "pending" },
    });
  });

  it("tells a stale claimer that its claim is gone", async () => {
    const projectId = uniqueProjectId();
    const a = await client(projectId);
    const b = await client(projectId);
    const { workId } = structured<{ workId: string }>(
      await a.call("warp_work_broadcast", { taskId: "race", description: "x", capability: "go" }),
    );
    expect(
      structured<{ claimed: boolean }>(
        await a.call("warp_work_claim", { capability: "go", timeoutMs: 2_000 }),
      ).claimed,
    ).toBe(true);
    const taken = structured<{ item: Item }>(
      await b.call("warp_work_claim", { capability: "go", timeoutMs: 5_000 }),
    );
    expect(taken.item).toMatchObject({ workId, attempts: 2 });
    const late = await a.call("warp_work_complete", { workId, result: "mine" });
    expect(errorCode(late)).toBe("conflict");
    expect(late.text).toMatch(/^conflict: /);
    expect(
      structured<{ item: Item }>(await b.call("warp_work_complete", { workId, result: "ours" })).item.result,
    ).toBe("ours");
  });

  it("rejects wrong types, invalid names and unknown work ids", async () => {
    const c = await client(uniqueProjectId());
    const unknown = randomId();
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["warp_work_broadcast", { taskId: "t", description: "d", capability: "Bad.Name" }, "invalid_input"],
      [
        "warp_work_broadcast",
        { taskId: "t", description: "d", capability: "ts", priority: "high" },
        "invalid_input",
      ],
      [
        "warp_work_broadcast",
        { taskId: "t", description: "d", capability: "ts", priority: 0 },
        "invalid_input",
      ],
      [
        "warp_work_broadcast",
        { taskId: "t", description: "d", capability: "ts", deadline: "tomorrow" },
        "invalid_input",
      ],
      [
        "warp_work_broadcast",
        { taskId: "t", description: "d", capability: "ts", scope: "galaxy" },
        "invalid_input",
      ],
      ["warp_work_broadcast", { taskId: "t", description: "d", capability: "ts", extra: 1 }, "invalid_input"],
      ["warp_work_broadcast", { description: "d", capability: "ts" }, "invalid_input"],
      ["warp_work_claim", { capability: "ts", boundary: "a b" }, "invalid_input"],
      ["warp_work_claim", { capability: 7 }, "invalid_input"],
      ["warp_work_claim", { capability: "ts", timeoutMs: -1 }, "invalid_input"],
      ["warp_work_progress", { workId: "nope" }, "invalid_input"],
      ["warp_work_progress", { workId: unknown }, "not_found"],
      ["warp_work_complete", { workId: unknown, result: "x" }, "not_found"],
      ["warp_work_complete", { workId: unknown, result: 5 }, "invalid_input"],
      ["warp_work_fail", { workId: unknown, reason: "x" }, "not_found"],
      ["warp_work_fail", { workId: unknown, reason: "" }, "invalid_input"],
      ["warp_work_fail", { workId: unknown, reason: "x", retryable: "no" }, "invalid_input"],
      ["warp_work_get", { workId: unknown }, "not_found"],
      ["warp_work_get", { workId: "ZZ" }, "invalid_input"],
      ["warp_work_list", {}, "invalid_input"],
      ["warp_work_list", { capability: "ts", status: ["bogus"] }, "invalid_input"],
      ["warp_work_list", { capability: "ts", limit: 1000 }, "invalid_input"],
      ["warp_work_queue_status", { capability: "*" }, "invalid_input"],
      ["warp_dlq_list", { cursor: "abc" }, "invalid_input"],
      ["warp_dlq_retry", { workId: unknown }, "not_found"],
      ["warp_dlq_retry", { workId: unknown, resetAttempts: "yes" }, "invalid_input"],
      ["warp_dlq_discard", { workId: unknown }, "not_found"],
      ["warp_dlq_discard", { workId: 12 }, "invalid_input"],
    ];
    for (const [tool, args, code] of cases) {
      const outcome = await c.call(tool, args);
      expect({ tool, args, code: errorCode(outcome) }).toEqual({ tool, args, code });
      expect(outcome.text.length).toBeGreaterThan(0);
    }
    // A pending item cannot be retried from the DLQ.
    const { workId } = structured<{ workId: string }>(
      await c.call("warp_work_broadcast", { taskId: "t", description: "d", capability: "ts" }),
    );
    expect(errorCode(await c.call("warp_dlq_retry", { workId }))).toBe("invalid_transition");
    expect(errorCode(await c.call("warp_work_complete", { workId, result: "x" }))).toBe("conflict");
  });

  it("answers with nats_unavailable when NATS cannot be reached", async () => {
    const port = await freePort();
    const c = await client(uniqueProjectId(), `nats://127.0.0.1:${port}`, false);
    expect((await c.listTools()).length).toBe(TOOL_NAMES.length);
    const outcome = await c.call("warp_work_claim", { capability: "ts", timeoutMs: 0 });
    expect(errorCode(outcome)).toBe("nats_unavailable");
    expect(outcome.text).toContain("NATS unreachable");
  });
});
