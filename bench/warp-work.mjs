#!/usr/bin/env node
// Warp work queues end to end: one offering process, N claimer processes (claim → complete), the latency
// of claims taken one at a time, and warp_work_claim / warp_work_complete round trips through the built
// `loominal-warp` bin over stdio (spawned as Claude Code would).
// Usage: node bench/warp-work.mjs [--items 20000] [--claimers 2] [--lanes 32] [--prefetch 256] [--calls 2000]
//        (starts its own nats-server unless NATS_URL is set; run `pnpm build` first)
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { spawnStdio } from "@loominal/testkit";
import { WorkQueue } from "@loominal/warp";
import { benchServer, bounded, percentiles, processCpuMicros, report, since } from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const num = (k, d) => (args.has(k) ? Number(args.get(k)) : d);

const MAX_MS = 120_000;
const settings = { ...warpConfigSchema.parse({}).work, ackWaitMs: 30_000 };

async function openQueue(url, projectId, prefetch) {
  const fabric = await Fabric.connect({ nats: { servers: [url] }, name: "bench-warp-work" });
  const work = new WorkQueue({ fabric, projectId, agentId: randomId(), userId: "bench", settings, prefetch });
  return { fabric, work };
}

// ——— claimer child process ———
if (process.argv[2] === "--claimer") {
  const [, , , url, projectId, lanesArg, prefetchArg] = process.argv;
  const { fabric, work } = await openQueue(url, projectId, Number(prefetchArg));
  const claimLat = [];
  let completed = 0;
  let stop = false;
  process.on("message", (m) => {
    if (m === "stop") stop = true;
  });
  const deadline = Date.now() + MAX_MS;
  const lane = async () => {
    while (!stop && Date.now() < deadline) {
      const t = performance.now();
      const item = await work.claim({ capability: "bench", timeoutMs: 1_000 });
      if (!item) continue;
      claimLat.push(since(t));
      await work.complete(item.workId, "ok");
      completed++;
    }
  };
  process.send?.("ready");
  const cpuStart = process.cpuUsage();
  const ticker = setInterval(() => process.send?.({ completed }), 20);
  await Promise.all(Array.from({ length: Number(lanesArg) }, lane));
  clearInterval(ticker);
  const cpu = process.cpuUsage(cpuStart);
  process.send?.({ completed, claimLat, cpuMicros: cpu.user + cpu.system });
  await work.close();
  await fabric.close();
  process.exit(0);
}

// ——— coordinator ———
const items = num("items", 20_000);
const claimers = num("claimers", 2);
const lanes = num("lanes", 32);
const prefetch = num("prefetch", 256);
const calls = num("calls", 2_000);
const offerConcurrency = num("offer-concurrency", 256);
const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "packages", "warp", "dist", "bin.js");
const server = await benchServer();
const self = fileURLToPath(import.meta.url);
try {
  // 1. Throughput: offers from this process, claims and completions from `claimers` processes.
  const projectId = `bench-${randomId().slice(0, 8)}`;
  const { fabric, work } = await openQueue(server.url, projectId, 1);
  await work.status(); // creates streams and bucket before the clock starts
  const children = [];
  const counts = new Array(claimers).fill(0);
  const finals = [];
  let allDone;
  const done = new Promise((r) => {
    allDone = r;
  });
  for (let i = 0; i < claimers; i++) {
    const child = fork(self, ["--claimer", server.url, projectId, String(lanes), String(prefetch)], {
      stdio: "inherit",
      execArgv: process.env.BENCH_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [],
    });
    await new Promise((r) => child.once("message", r));
    child.on("message", (m) => {
      if (m && typeof m === "object" && "claimLat" in m) finals.push(m);
      else if (m && typeof m === "object") counts[i] = m.completed;
      if (counts.reduce((a, b) => a + b, 0) >= items) allDone();
    });
    children.push(child);
  }
  const offerLat = [];
  const serverCpu0 = processCpuMicros(server.pid);
  const offererCpu0 = process.cpuUsage();
  const t0 = performance.now();
  const offered = await bounded({ count: items, maxMs: MAX_MS, concurrency: offerConcurrency }, async (i) => {
    const s = performance.now();
    await work.offer({ taskId: `t${i}`, description: "bench item", capability: "bench" });
    offerLat.push(since(s));
  });
  const offerSecs = since(t0) / 1000;
  const offererCpu = process.cpuUsage(offererCpu0);
  let timer;
  await Promise.race([done, new Promise((r) => (timer = setTimeout(r, MAX_MS)))]);
  clearTimeout(timer);
  const secs = since(t0) / 1000;
  const exited = children.map((c) => new Promise((r) => c.once("exit", r)));
  for (const c of children) c.send("stop");
  await Promise.all(exited);
  const serverCpu1 = processCpuMicros(server.pid);
  const completed = finals.reduce((a, f) => a + f.completed, 0);
  const perItem = (micros) =>
    micros === undefined || completed === 0 ? undefined : Math.round(micros / completed);
  const status = await work.status("bench");
  report("warp.work.offer-claim-complete", {
    items: offered,
    completed,
    claimers,
    lanesPerClaimer: lanes,
    prefetch,
    itemsPerSec: Math.round(completed / secs),
    offersPerSec: Math.round(offered / offerSecs),
    seconds: Math.round(secs * 1000) / 1000,
    offerLatencyMs: percentiles(offerLat),
    claimLatencyMs: percentiles(finals.flatMap((f) => f.claimLat)),
    leftQueued: status.capabilities[0]?.queued ?? 0,
    // CPU time per completed item, µs: the offering process, each claimer process, and nats-server (a
    // local one only; its figure includes the claimers' idle pulls after the last item).
    cpuMicrosPerItem: {
      offerer: perItem(offererCpu.user + offererCpu.system),
      claimers: finals.map((f) => Math.round(f.cpuMicros / Math.max(1, f.completed))),
      server:
        serverCpu0 === undefined || serverCpu1 === undefined ? undefined : perItem(serverCpu1 - serverCpu0),
    },
  });
  await work.close();
  await fabric.close();

  // 2. Claim latency of one claimer taking queued items one at a time (no prefetch: each claim pulls).
  const p2 = `bench-${randomId().slice(0, 8)}`;
  const a = await openQueue(server.url, p2, 1);
  const n = 2_000;
  await bounded({ count: n, maxMs: MAX_MS, concurrency: 64 }, (i) =>
    a.work.offer({ taskId: `s${i}`, description: "bench item", capability: "bench" }),
  );
  const seqLat = [];
  const completeLat = [];
  await bounded({ count: n, maxMs: MAX_MS, concurrency: 1 }, async () => {
    let s = performance.now();
    const item = await a.work.claim({ capability: "bench", timeoutMs: 1_000 });
    seqLat.push(since(s));
    if (!item) return;
    s = performance.now();
    await a.work.complete(item.workId, "ok");
    completeLat.push(since(s));
  });
  report("warp.work.claim-sequential", {
    claims: seqLat.length,
    prefetch: 1,
    claimLatencyMs: percentiles(seqLat),
    completeLatencyMs: percentiles(completeLat),
  });
  await a.work.close();
  await a.fabric.close();

  // 3. Through the MCP tools over stdio: an agent claiming and completing queued items one at a time.
  const dir = mkdtempSync(join(tmpdir(), "bench-warp-work-"));
  const p3 = `bench-${randomId().slice(0, 8)}`;
  writeFileSync(join(dir, ".loominal.json"), JSON.stringify({ projectId: p3 }));
  const b = await openQueue(server.url, p3, 1);
  await bounded({ count: calls + 100, maxMs: MAX_MS, concurrency: 64 }, (i) =>
    b.work.offer({ taskId: `m${i}`, description: "bench item", capability: "bench" }),
  );
  const client = await spawnStdio({
    command: process.execPath,
    args: [BIN],
    cwd: dir,
    env: { NATS_URL: server.url, LOOMINAL_LOG_LEVEL: "warn", LOOMINAL_TOOLS: "full" },
  });
  try {
    const callOk = async (name, input) => {
      const r = await client.call(name, input);
      if (r.isError) throw new Error(`${name}: ${r.text}`);
      return r.structured;
    };
    const claimLat = [];
    const completeLat = [];
    let i = 0;
    await bounded({ count: calls + 100, maxMs: MAX_MS }, async () => {
      let t = performance.now();
      const r = await callOk("warp_work_claim", { capability: "bench", timeoutMs: 1_000 });
      const claimMs = since(t);
      if (!r.claimed) return;
      t = performance.now();
      await callOk("warp_work_complete", { workId: r.item.workId, result: "ok" });
      // The first 100 warm up the connection, the consumer and the JIT.
      if (i++ >= 100) {
        claimLat.push(claimMs);
        completeLat.push(since(t));
      }
    });
    report("warp.mcp.stdio.work_claim_complete", {
      calls: claimLat.length,
      sequential: true,
      claimLatencyMs: percentiles(claimLat),
      completeLatencyMs: percentiles(completeLat),
    });
  } finally {
    await client.close();
    await b.work.close();
    await b.fabric.close();
    rmSync(dir, { recursive: true, force: true });
  }
} finally {
  await server.stop();
}
