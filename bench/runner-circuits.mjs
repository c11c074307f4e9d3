// Runner: circuits (researcher → editor → evaluator, three runs per circuit posted at once for one user)
// through 1 or 2 replica processes on the mock provider (50 ms + 25 ms jitter), then cross-replica cancel
// latency and the time from kill -9 of a replica to its runs being failed by the reaper.
// Usage: node bench/runner-circuits.mjs   (env: CIRCUITS=200 REPLICAS=2 RATE429=0)
// A circuit counts as completed only if its three runs completed AND its three memory keys and the
// evaluation exist (a "completed" circuit without them is a silent regression and counts as failed).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import { buckets, keys } from "@loominal/protocol";
import { benchServer, percentiles, report, since } from "./lib.mjs";

const BIN = fileURLToPath(new URL("../apps/runner/dist/bin.js", import.meta.url));
const CIRCUITS = Number(process.env.CIRCUITS ?? 200);
const REPLICAS = Number(process.env.REPLICAS ?? 2);
const RATE429 = process.env.RATE429 ?? "0";
const MAX_MS = 300_000;

function startReplica(natsUrl, id, extra = {}) {
  // REPLICA_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the replicas.
  const nodeArgs = (process.env.REPLICA_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, BIN], {
    env: {
      PATH: process.env.PATH,
      LOOMINAL_LOG_LEVEL: "warn",
      NATS_URL: natsUrl,
      RUNNER_PORT: "0",
      RUNNER_REPLICA_ID: id,
      RUNNER_MAX_CONCURRENT_RUNS: "1024",
      RUNNER_MAX_RUNS_PER_USER: "8",
      RUNNER_QUEUE_MAX: "4096",
      RUNNER_MOCK_429_RATE: RATE429,
      RUNNER_HEARTBEAT_INTERVAL_MS: "1000",
      RUNNER_REPLICA_TTL_MS: "5000",
      RUNNER_REAPER_INTERVAL_MS: "1000",
      ...extra,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (b) => {
      buf += b.toString();
      const line = buf.split("\n").find((l) => l.startsWith('{"ready":true'));
      if (line) resolve({ proc, url: JSON.parse(line).url, id });
    });
    proc.once("exit", (code) => reject(new Error(`replica ${id} exited ${code}`)));
  });
}

/** POSTs a run with SSE and resolves when its terminal event arrives: { status, ms }. */
async function streamRun(url, body) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/runs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) return { status: `http_${res.status}`, ms: since(t0) };
  const text = await res.text();
  const done = /event: done\ndata: (.*)/.exec(text);
  const runId = /"run_id":"([0-9a-f]{32})"/.exec(text)?.[1];
  return { status: done ? JSON.parse(done[1]).status : "failed", ms: since(t0), runId };
}

const server = await benchServer();
const replicas = await Promise.all(
  Array.from({ length: REPLICAS }, (_, i) => startReplica(server.url, `bench-${i + 1}`)),
);
process.stderr.write(`# replicas: ${replicas.map((r) => r.url).join(" ")}\n`);
const fabric = await Fabric.connect({ nats: { servers: [server.url] } });
const memory = await fabric.kvm.open(buckets.runnerMemory());
const evals = await fabric.kvm.open(buckets.runnerEvals());

// 1. Circuits, all posted at once.
const t0 = performance.now();
const circuitMs = [];
let completed = 0;
let silent = 0;
let failed = 0;
await Promise.all(
  Array.from({ length: CIRCUITS }, async (_, i) => {
    const c = `c${i}`;
    const user = `bench-${c}`;
    const start = performance.now();
    const runs = await Promise.all(
      ["mock-researcher", "mock-editor", "mock-evaluator"].map((agent, j) =>
        streamRun(replicas[(i + j) % replicas.length].url, {
          agent,
          prompt: `Your circuit_id is ${c}.`,
          user_id: user,
        }),
      ),
    );
    const ms = since(start);
    if (!runs.every((r) => r.status === "completed")) {
      failed++;
      return;
    }
    const present = await Promise.all(
      ["research", "research-edited", "research-scored"].map((k) =>
        memory.get(keys.runnerMemory("user", user, `${c}-${k}`)),
      ),
    );
    let evaluated = false;
    for await (const _ of await evals.keys(keys.runnerEvaluationsPrefix(runs[1].runId))) evaluated = true;
    if (present.every((e) => e?.operation === "PUT") && evaluated) {
      completed++;
      circuitMs.push(ms);
    } else silent++;
  }),
);
const elapsed = since(t0);
report("runner-circuits", {
  replicas: REPLICAS,
  circuits: CIRCUITS,
  rate429: Number(RATE429),
  completed,
  failed,
  silentRegressions: silent,
  elapsedMs: Math.round(elapsed),
  runsPerSecond: Math.round(((completed * 3) / elapsed) * 1000 * 10) / 10,
  circuitMs: percentiles(circuitMs),
});

// 2. Cross-replica cancel: start a looping run on one replica, cancel it through another.
if (REPLICAS >= 2) {
  const cancelMs = [];
  for (let i = 0; i < 50 && since(t0) < MAX_MS; i++) {
    const res = await fetch(`${replicas[0].url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        agent: "mock-generic",
        prompt: "[loop]",
        user_id: `cancel-${i}`,
        stream: false,
      }),
    });
    const { run_id } = await res.json();
    let owner;
    for (let k = 0; k < 200; k++) {
      const run = await (await fetch(`${replicas[0].url}/v1/runs/${run_id}`)).json();
      if (run.status === "running") {
        owner = run.replica_id;
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const other = replicas.find((r) => r.id !== owner) ?? replicas[1];
    const c0 = performance.now();
    const cancelled = await fetch(`${other.url}/v1/runs/${run_id}/cancel`, { method: "POST" });
    if (cancelled.status === 200) cancelMs.push(since(c0));
  }
  report("runner-cancel-cross-replica", { samples: cancelMs.length, cancelMs: percentiles(cancelMs) });

  // 3. kill -9 a replica with runs on it: time until the reaper has failed them all.
  const ids = [];
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${replicas[i % replicas.length].url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        agent: "mock-generic",
        prompt: "[loop]",
        user_id: `victim-${i}`,
        stream: false,
      }),
    });
    ids.push((await res.json()).run_id);
  }
  await new Promise((r) => setTimeout(r, 500));
  const byReplica = new Map();
  for (const id of ids) {
    const run = await (await fetch(`${replicas[0].url}/v1/runs/${id}`)).json();
    if (run.status === "running")
      byReplica.set(run.replica_id, [...(byReplica.get(run.replica_id) ?? []), id]);
  }
  const victim = replicas.reduce((a, b) =>
    (byReplica.get(b.id) ?? []).length > (byReplica.get(a.id) ?? []).length ? b : a,
  );
  const observer = replicas.find((r) => r !== victim);
  const owned = byReplica.get(victim.id) ?? [];
  const k0 = performance.now();
  victim.proc.kill("SIGKILL");
  let reapedMs;
  while (since(k0) < 60_000) {
    const runs = await Promise.all(
      owned.map(async (id) => (await fetch(`${observer.url}/v1/runs/${id}`)).json()),
    );
    if (runs.every((r) => r.status === "failed" && r.stop_reason === "replica_died")) {
      reapedMs = since(k0);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  report("runner-kill-reap", {
    victimRuns: owned.length,
    replicaTtlMs: 5000,
    reaperIntervalMs: 1000,
    reapedMs: reapedMs === undefined ? null : Math.round(reapedMs),
  });
}

await Promise.all(
  replicas.map((r) =>
    r.proc.exitCode === null && r.proc.signalCode === null
      ? new Promise((resolve) => {
          r.proc.once("exit", resolve);
          r.proc.kill("SIGTERM");
        })
      : undefined,
  ),
);
await fabric.close();
await server.stop();
