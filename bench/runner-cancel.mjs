// Cross-replica cancel on quiet replicas: two runner replicas (the built bin, separate processes) against a
// private nats-server, a looping run started at a time and cancelled through the replica that does not run
// it, one cancel in flight at a time. The ack is the HTTP answer; `serverMs` is the time inside the
// answering replica (its Server-Timing header, absent before the runner sent it). Beside it, the time until
// the run's quota slot is free again (the owner has stopped the loop). The circuit harness
// (`--cancel`) measures cancels in the middle of a burst instead.
// `requestMs` is the replica's whole request from its arrival (the fast path's `req;dur`, absent through
// express). `tail` lists the slowest acks with their parts (`headersMs`: until the answer's headers).
// Usage: node bench/runner-cancel.mjs   (env: RUNS=100 MAX_MS=120000 CLIENT=fetch|http SAMPLES=out.json;
// CLIENT=http sends the cancel through node:http with a keep-alive agent instead of fetch)

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Fabric } from "@loominal/fabric";
import { buckets } from "@loominal/protocol";
import { startNats, startReplica } from "./circuits/processes.mjs";
import { bounded, percentiles, report } from "./lib.mjs";

const RUNS = Number(process.env.RUNS ?? 100);
const MAX_MS = Number(process.env.MAX_MS ?? 120_000);
const CLIENT = process.env.CLIENT ?? "fetch";

const dir = mkdtempSync(join(tmpdir(), "runner-cancel-"));
const agents = join(dir, "agents.yaml");
writeFileSync(
  agents,
  [
    "- name: slow",
    "  model: generic",
    "  maxIterations: 1000",
    "  providers: [{ provider: mock, mock: { latencyMs: 100, jitterMs: 0 } }]",
  ].join("\n"),
);
const nats = await startNats(1);
const env = { NATS_URL: nats.url, RUNNER_AGENTS: agents, RUNNER_MAX_CONCURRENT_RUNS: "64" };
const replicas = [];
let fabric;
try {
  replicas.push(await startReplica({ ...env, RUNNER_REPLICA_ID: "cancel-a" }));
  replicas.push(await startReplica({ ...env, RUNNER_REPLICA_ID: "cancel-b" }));
  fabric = await Fabric.connect({ nats: { servers: [nats.url] }, name: "bench-runner-cancel" });
  const quotas = await fabric.kvm.open(buckets.runnerQuotas());
  // The cancel request: through fetch (undici, as most clients) or node:http with a keep-alive agent.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const cancel =
    CLIENT === "http"
      ? (url) =>
          new Promise((resolve, reject) => {
            const t = performance.now();
            const req = http.request(url, { method: "POST", agent }, (res) => {
              const headersMs = performance.now() - t;
              const chunks = [];
              res.on("data", (c) => chunks.push(c));
              res.on("end", () =>
                resolve({
                  status: res.statusCode,
                  timing: res.headers["server-timing"],
                  headersMs,
                  body: JSON.parse(Buffer.concat(chunks).toString()),
                }),
              );
              res.on("error", reject);
            });
            req.on("error", reject);
            req.end();
          })
      : async (url) => {
          const t = performance.now();
          const res = await fetch(url, { method: "POST" });
          const headersMs = performance.now() - t;
          return {
            status: res.status,
            timing: res.headers.get("server-timing"),
            headersMs,
            body: await res.json(),
          };
        };
  const json = async (url, init) => (await fetch(url, init)).json();
  const post = (r, body) =>
    json(`${r.url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const samples = [];
  const ackMs = [];
  const serverMs = [];
  const freedMs = [];
  const outcomes = {};
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const t0 = performance.now();
  const done = await bounded({ count: RUNS, maxMs: MAX_MS }, async (i) => {
    const user = `cancel-${i}`;
    const admitted = await post(replicas[i % 2], {
      agent: "slow",
      prompt: "[loop]",
      user_id: user,
      stream: false,
    });
    const id = admitted.run_id;
    let run;
    for (let t = 0; t < 200; t++) {
      run = await json(`${replicas[0].url}/v1/runs/${id}`);
      if (run.status === "running") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const via = replicas.find((r) => r.id !== run.replica_id) ?? replicas[0];
    // Let the run take a step or two first.
    await new Promise((r) => setTimeout(r, 150));
    const t = performance.now();
    const res = await cancel(`${via.url}/v1/runs/${id}/cancel`);
    const ms = performance.now() - t;
    const key = res.status === 200 ? res.body.status : `http_${res.status}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    if (res.status !== 200) return;
    ackMs.push(ms);
    const st = Object.fromEntries(
      [...(res.timing ?? "").matchAll(/(\w+);dur=(-?[\d.]+)/g)].map((m) => [m[1], Number(m[2])]),
    );
    if (st.cancel !== undefined) serverMs.push(st.cancel);
    // Whether the answering replica had read the run (the driver's polling goes to replicas[0]) or
    // accepted it (its POST): what it remembers of the record decides whether the cancel reads it first.
    samples.push({
      viaRead: via === replicas[0],
      viaAccepted: via === replicas[i % 2],
      i,
      ms: Math.round(ms * 100) / 100,
      headersMs: Math.round(res.headersMs * 100) / 100,
      ...st,
    });
    const key64 = `u.${Buffer.from(user).toString("base64url")}`;
    for (let k = 0; k < 500; k++) {
      const e = await quotas.get(key64);
      if (e?.operation !== "PUT" || !Object.keys(e.json().runs ?? {}).includes(id)) {
        freedMs.push(performance.now() - t);
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  });
  lag.disable();
  // Percentiles of `value` over the samples of each path a cancel took (what the replica remembered).
  const paths = {
    viaRead: (x) => x.viaRead,
    viaAcceptedNotRead: (x) => x.viaAccepted && !x.viaRead,
    neither: (x) => !x.viaAccepted && !x.viaRead,
  };
  const byPath = (value) =>
    Object.fromEntries(
      Object.entries(paths).map(([k, on]) => [k, percentiles(samples.filter(on).map(value))]),
    );
  if (process.env.SAMPLES) writeFileSync(process.env.SAMPLES, JSON.stringify(samples));
  report("runner-cancel", {
    runs: done,
    client: CLIENT,
    elapsedMs: Math.round(performance.now() - t0),
    outcomes,
    ackMs: percentiles(ackMs),
    serverMs: percentiles(serverMs),
    requestMs: percentiles(samples.flatMap((x) => (x.req === undefined ? [] : [x.req]))),
    slotFreedMs: percentiles(freedMs),
    ackMsBy: byPath((x) => x.ms),
    serverMsBy: byPath((x) => x.cancel ?? 0),
    tail: [...samples].sort((a, b) => b.ms - a.ms).slice(0, 5),
    driverEventLoopDelayMs: {
      p50: Math.round(lag.percentile(50) / 1e4) / 100,
      p99: Math.round(lag.percentile(99) / 1e4) / 100,
    },
  });
} finally {
  await fabric?.close();
  await Promise.all(replicas.map((r) => r.kill("SIGTERM")));
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
