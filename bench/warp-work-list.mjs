#!/usr/bin/env node
// Listing a work ledger that holds a long history: `WorkQueue.list` latency with N finished items (and a
// few pending ones, the oldest) in the ledger, against the cost of listing every key of the ledger
// (what a list did before it read the ledger's stream by windows).
// Usage: node bench/warp-work-list.mjs [--items 100000] [--calls 50]
//        (starts its own nats-server unless NATS_URL is set; run `pnpm build` first)
import { ensureBucket, Fabric } from "@loominal/fabric";
import { buckets, randomId, warpConfigSchema } from "@loominal/protocol";
import { newWorkId, WorkQueue } from "@loominal/warp";
import { benchServer, bounded, percentiles, report, since } from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const num = (k, d) => (args.has(k) ? Number(args.get(k)) : d);
const items = num("items", 100_000);
const calls = num("calls", 50);
const MAX_MS = 300_000;

const server = await benchServer();
const fabric = await Fabric.connect({ nats: { servers: [server.url] }, name: "bench-list" });
try {
  const projectId = `bench-${randomId().slice(0, 8)}`;
  const agentId = randomId();
  const work = new WorkQueue({
    fabric,
    projectId,
    agentId,
    userId: randomId(),
    settings: warpConfigSchema.parse({}).work,
  });
  // A few pending items first (the oldest writes), then the finished history.
  const pending = [];
  for (let i = 0; i < 5; i++)
    pending.push(await work.offer({ taskId: `p${i}`, description: "waiting", capability: "typescript" }));
  const kv = await ensureBucket(fabric, { name: buckets.workLedger(projectId), history: 4 });
  const at = new Date().toISOString();
  const t0 = performance.now();
  const written = await bounded({ count: items, maxMs: MAX_MS, concurrency: 256 }, async (i) => {
    const workId = newWorkId();
    const item = {
      workId,
      projectId,
      taskId: `done-${i}`,
      description: "finished work of the past weeks",
      capability: i % 2 === 0 ? "typescript" : "python",
      boundary: "default",
      priority: 5,
      scope: "team",
      offeredBy: { agentId, userId: agentId },
      status: "completed",
      attempts: 1,
      maxAttempts: 3,
      result: { summary: "ok" },
      completedBy: agentId,
      createdAt: at,
      updatedAt: at,
      finishedAt: at,
      lastTransition: { events: ["completed"], agentId, at },
    };
    await kv.put(workId, JSON.stringify(item));
  });
  const fillSeconds = since(t0) / 1000;

  const timed = async (fn) => {
    const samples = [];
    for (let i = 0; i < calls; i++) {
      const s = performance.now();
      await fn();
      samples.push(since(s));
    }
    return percentiles(samples);
  };
  const first = await timed(() => work.list({ limit: 50 }));
  const byCapability = await timed(() => work.list({ capability: "typescript", limit: 50 }));
  let cursor;
  const paging = await timed(async () => {
    const page = await work.list({ limit: 50, ...(cursor ? { cursor } : {}) });
    cursor = page.nextCursor;
  });
  // The pending items sit behind the whole finished history: a status filter scans at most 20,000
  // writes per call and returns a cursor to continue.
  let pendingFound = 0;
  let pendingCalls = 0;
  const pendingLatency = [];
  let pc;
  do {
    const s = performance.now();
    const page = await work.list({ status: "pending", limit: 50, ...(pc ? { cursor: pc } : {}) });
    pendingLatency.push(since(s));
    pendingFound += page.items.length;
    pc = page.nextCursor;
    pendingCalls++;
  } while (pc && pendingCalls < 20);
  const k0 = performance.now();
  let keys = 0;
  for await (const _ of await kv.keys()) keys++;
  const allKeysMs = since(k0);

  report("warp.work.list", {
    ledgerItems: written + pending.length,
    fillSeconds: Math.round(fillSeconds * 10) / 10,
    calls,
    listNewest50Ms: first,
    listByCapability50Ms: byCapability,
    listPagingBy50Ms: paging,
    listPendingBehindHistory: {
      calls: pendingCalls,
      found: pendingFound,
      totalMs: Math.round(pendingLatency.reduce((a, b) => a + b, 0)),
    },
    listEveryKeyMs: Math.round(allKeysMs),
    keys,
  });
  await work.close();
} finally {
  await fabric.close();
  await server.stop();
}
