#!/usr/bin/env node
// Pattern write throughput: MemoryStore.remember through the library, and pattern_remember over MCP (in-memory).
// Usage: node bench/pattern-remember.mjs   (after `pnpm build`; starts its own nats-server unless NATS_URL is set)
import { Fabric } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { connectInMemory } from "@loominal/testkit";
import { createPatternServer, MemoryStore } from "../packages/pattern/dist/index.js";
import { benchServer, bounded, percentiles, report, since } from "./lib.mjs";

const server = await benchServer();
const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
const identity = () => ({
  projectId: `bench-${randomId().slice(0, 12)}`,
  agentId: randomId(),
  userId: randomId(),
});
const text = (i) =>
  `note ${i}: the parser handles nested generics after the ${i % 97}th refactor; see src/parse.ts`;

try {
  // Library: private/recent (ephemeral bucket), 256 in flight. First call creates the buckets.
  for (const [label, category, concurrency] of [
    ["recent", "recent", 256],
    ["longterm", "longterm", 256],
    ["recent-64-in-flight", "recent", 64],
  ]) {
    const store = new MemoryStore({ fabric, identity: identity() });
    await store.remember({ content: "warm-up", category });
    const lat = [];
    const t0 = performance.now();
    const n = await bounded({ count: 50_000, maxMs: 20_000, concurrency }, async (i) => {
      const s = performance.now();
      await store.remember({ content: text(i), category, tags: ["bench"] });
      lat.push(since(s));
    });
    report(`pattern.remember.library.${label}`, {
      ops: n,
      concurrency,
      opsPerSec: Math.round(n / (since(t0) / 1000)),
      latencyMs: percentiles(lat),
    });
    await store.close();
  }

  // MCP: pattern_remember through an in-memory client (adds JSON-RPC, schema validation, result shaping).
  const store = new MemoryStore({ fabric, identity: identity() });
  const client = await connectInMemory(createPatternServer({ store, projectDir: process.cwd() }));
  await client.call("pattern_remember", { content: "warm-up" });
  const lat = [];
  const t0 = performance.now();
  const n = await bounded({ count: 20_000, maxMs: 20_000, concurrency: 64 }, async (i) => {
    const s = performance.now();
    const r = await client.call("pattern_remember", { content: text(i), tags: ["bench"] });
    if (r.isError) throw new Error(r.text);
    lat.push(since(s));
  });
  report("pattern.remember.mcp-in-memory", {
    ops: n,
    concurrency: 64,
    opsPerSec: Math.round(n / (since(t0) / 1000)),
    latencyMs: percentiles(lat),
  });
  await client.close();
  await store.close();
} finally {
  await fabric.close();
  await server.stop();
}
