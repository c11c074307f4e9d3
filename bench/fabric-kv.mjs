#!/usr/bin/env node
// KV compare-and-set throughput through @loominal/fabric: many keys, and one hot key with 64 writers.
// Usage: node bench/fabric-kv.mjs   (starts its own nats-server unless NATS_URL is set)
import { casUpdate, ensureBucket, Fabric, jsonCodec } from "@loominal/fabric";
import { z } from "zod";
import { benchServer, bounded, percentiles, report, since } from "./lib.mjs";

const codec = jsonCodec(z.object({ n: z.number() }));
const server = await benchServer();
const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
try {
  const kv = await ensureBucket(fabric, { name: `bench-cas-${Date.now()}` });

  // Many keys, 32 in flight, one process: the common case (each key updated by its owner).
  const keys = 1_000;
  const lat = [];
  let t0 = performance.now();
  const n = await bounded({ count: 20_000, maxMs: 20_000, concurrency: 32 }, async (i) => {
    const s = performance.now();
    await casUpdate(kv, `k${i % keys}`, codec, (cur) => ({ n: (cur?.n ?? 0) + 1 }));
    lat.push(since(s));
  });
  report("fabric.cas.many-keys", {
    ops: n,
    opsPerSec: Math.round(n / (since(t0) / 1000)),
    latencyMs: percentiles(lat),
  });

  // One hot key, 64 writers on 8 connections: every write races the others.
  const conns = await Promise.all(
    Array.from({ length: 8 }, () => Fabric.connect({ nats: { servers: [server.url] } })),
  );
  const hotBucket = `bench-hot-${Date.now()}`;
  const kvs = await Promise.all(conns.map((c) => ensureBucket(c, { name: hotBucket })));
  const hotLat = [];
  t0 = performance.now();
  const m = await bounded({ count: 3_000, maxMs: 20_000, concurrency: 64 }, async (i) => {
    const s = performance.now();
    await casUpdate(kvs[i % kvs.length], "hot", codec, (cur) => ({ n: (cur?.n ?? 0) + 1 }));
    hotLat.push(since(s));
  });
  const final = (await kvs[0].get("hot"))?.json().n;
  report("fabric.cas.hot-key-64-writers-8-conns", {
    ops: m,
    final,
    lost: m - final,
    opsPerSec: Math.round(m / (since(t0) / 1000)),
    latencyMs: percentiles(hotLat),
  });
  await Promise.all(conns.map((c) => c.close()));
} finally {
  await fabric.close();
  await server.stop();
}
