#!/usr/bin/env node
// Pattern recall latency: pattern_recall_context over the caller's 10,000 memories (library and MCP), and
// whether recall cost follows the caller's own memories or the project's total (1,000 own among 100,000).
// Usage: node bench/pattern-recall.mjs   (after `pnpm build`; starts its own nats-server unless NATS_URL is set)
import { Fabric } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { connectInMemory } from "@loominal/testkit";
import { createPatternServer, MemoryStore } from "../packages/pattern/dist/index.js";
import { benchServer, bounded, percentiles, report, since } from "./lib.mjs";

const server = await benchServer();
const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
const WORDS =
  "parser nats bucket schema retry lease claim recall summary token budget agent queue stream watch".split(
    " ",
  );
const CATEGORIES = [
  "recent",
  "recent",
  "recent",
  "recent",
  "recent",
  "tasks",
  "tasks",
  "longterm",
  "longterm",
  "longterm",
];
const content = (i) =>
  `memory ${i}: ${Array.from({ length: 14 }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(" ")}`;

/** Writes `count` private memories for `identity`, 64 in flight, bounded in time. */
async function fill(identity, count) {
  const store = new MemoryStore({ fabric, identity });
  const n = await bounded({ count, maxMs: 120_000, concurrency: 64 }, (i) =>
    store.remember({
      content: content(i),
      category: CATEGORIES[i % CATEGORIES.length],
      priority: 1 + (i % 3),
    }),
  );
  await store.close();
  if (n !== count) throw new Error(`wrote ${n} of ${count} memories within the time bound`);
}

/** Cold (first) recall of a fresh store, then `iterations` warm recalls; returns both. */
async function measure(identity, iterations, via = "library") {
  const store = new MemoryStore({ fabric, identity });
  const client =
    via === "mcp"
      ? await connectInMemory(createPatternServer({ store, projectDir: process.cwd() }))
      : undefined;
  const recallOnce = async () => {
    if (!client) return store.recallContext({});
    const r = await client.call("pattern_recall_context", {});
    if (r.isError) throw new Error(r.text);
    return r.structured;
  };
  let t0 = performance.now();
  const first = await recallOnce();
  const coldMs = Math.round(since(t0) * 1000) / 1000;
  const lat = [];
  await bounded({ count: iterations, maxMs: 60_000 }, async () => {
    t0 = performance.now();
    await recallOnce();
    lat.push(since(t0));
  });
  await client?.close();
  await store.close();
  return { coldMs, warmMs: percentiles(lat), matched: first.matched, returned: first.memories.length };
}

try {
  const project = () => `bench-${randomId().slice(0, 12)}`;

  // 10,000 memories of the caller.
  const me = { projectId: project(), agentId: randomId(), userId: randomId() };
  let t0 = performance.now();
  await fill(me, 10_000);
  const fillMs = since(t0);
  report("pattern.recall.10k-own.library", {
    memories: 10_000,
    fillOpsPerSec: Math.round(10_000 / (fillMs / 1000)),
    ...(await measure(me, 200)),
  });
  report("pattern.recall.10k-own.mcp-in-memory", { memories: 10_000, ...(await measure(me, 200, "mcp")) });

  // 1,000 own memories alone in a project, versus 1,000 own among 100,000 (99 other agents × 1,000).
  const alone = { projectId: project(), agentId: randomId(), userId: randomId() };
  await fill(alone, 1_000);
  report("pattern.recall.1k-own.project-1k", { projectMemories: 1_000, ...(await measure(alone, 200)) });

  const crowded = project();
  const mine = { projectId: crowded, agentId: randomId(), userId: randomId() };
  await fill(mine, 1_000);
  t0 = performance.now();
  for (let a = 0; a < 99; a++)
    await fill({ projectId: crowded, agentId: randomId(), userId: randomId() }, 1_000);
  const othersMs = since(t0);
  report("pattern.recall.1k-own.project-100k", {
    projectMemories: 100_000,
    fillOpsPerSec: Math.round(99_000 / (othersMs / 1000)),
    ...(await measure(mine, 200)),
  });
} finally {
  await fabric.close();
  await server.stop();
}
