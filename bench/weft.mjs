#!/usr/bin/env node
// Weft end to end: a `weft serve` process on its own nats-server.
//  1. submit → claimed: one claimer waits on the queue; each item is submitted through the REST API and the
//     time until the claimer holds it is measured (sequential, so the claimer is always waiting);
//  2. REST submissions/s with `--concurrency` requests in flight, their latency, and Weft's own CPU per
//     submission (from /proc: user + system time of the weft process over the run; and again once Weft's
//     event mirror, which trails under load, has caught up);
//  3. submit → claimed again as in 1, now that Weft is warm (its code compiled and its heap settled by
//     the submission run), as it is for agents of a Weft that has been serving;
//  4. a summary against the targets (submit → claimed p99 ≤ 10 ms; ≥ 2,000 submissions/s), Weft's start
//     time (spawn to listening) and resident memory at the end, and the machine's load average before and
//     after, since the machine may be shared.
// Usage: node bench/weft.mjs [--claims 500] [--submissions 20000] [--concurrency 64] [--warmup 20]
//        (--warmup: items submitted and claimed before phase 1 is measured; Weft starts cold)
//        (run `pnpm -w build` first; starts its own nats-server unless NATS_URL is set)
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import { randomId, streams, warpConfigSchema } from "@loominal/protocol";
import { WorkQueue } from "@loominal/warp";
import {
  benchServer,
  bounded,
  percentiles,
  processCpuMicros,
  processUsage,
  report,
  since,
  usagePer,
} from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const num = (k, d) => (args.has(k) ? Number(args.get(k)) : d);
const CLAIMS = num("claims", 500);
const SUBMISSIONS = num("submissions", 20_000);
const CONCURRENCY = num("concurrency", 64);
const WARMUP = num("warmup", 20);
const MAX_MS = 60_000;
const TOKEN = randomId();
const WEFT_BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "apps", "weft", "dist", "bin.js");

async function startWeft(natsUrl, cwd) {
  // BENCH_WEFT_NODE_ARGS: extra node arguments for the Weft process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const nodeArgs = (process.env.BENCH_WEFT_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [...nodeArgs, WEFT_BIN, "serve"], {
    cwd,
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      WEFT_PORT: "0",
      WEFT_API_TOKENS: TOKEN,
      LOOMINAL_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weft did not start: ${out}`)), 60_000);
    proc.stdout.on("data", (d) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"weft listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once("exit", (code) => reject(new Error(`weft exited with ${code}: ${out}`)));
  });
  return { proc, url, startMs: Math.round(since(spawnedAt)) };
}

/** A process's resident memory in MB (Linux), or null. */
function rssMb(pid) {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? null : Math.round(Number(kb) / 1024);
  } catch {
    return null;
  }
}

const server = await benchServer();
const dir = mkdtempSync(join(tmpdir(), "bench-weft-"));
const weft = await startWeft(server.url, dir);
// node:http with keep-alive rather than fetch: the client shares the machine's cores with Weft and
// nats-server, and fetch costs several times more CPU per request.
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const submitUrl = new URL(weft.url);
const submit = (projectId, body) =>
  new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request(
      {
        host: submitUrl.hostname,
        port: submitUrl.port,
        path: `/api/work?projectId=${projectId}`,
        method: "POST",
        agent,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => {
          if (res.statusCode !== 201) reject(new Error(`submit answered ${res.statusCode}: ${text}`));
          else resolve(JSON.parse(text));
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });

const round2 = (n) => Math.round(n * 100) / 100;
const loadBefore = loadavg().map(round2);
let claimP99;
let rest;
// One claimer (the Warp library) waits on one project's queue throughout.
const claimProject = `bench-${randomId().slice(0, 12)}`;
const claimFabric = await Fabric.connect({ nats: { servers: [server.url] }, name: "bench-weft-claimer" });
const claimWork = new WorkQueue({
  fabric: claimFabric,
  projectId: claimProject,
  agentId: randomId(),
  userId: randomId(),
  settings: { ...warpConfigSchema.parse({}).work, ackWaitMs: 30_000 },
});

/** Submits CLAIMS items one at a time while the claimer waits; reports submit → claimed. */
async function submitToClaim(name, extra) {
  const lat = [];
  const answered = [];
  const deadline = performance.now() + MAX_MS;
  for (let i = 0; i < CLAIMS && performance.now() < deadline; i++) {
    const claimed = claimWork.claim({ capability: "bench", timeoutMs: 10_000 });
    // Let the claimer's pull reach the server first, as it would for an agent already waiting.
    await new Promise((r) => setTimeout(r, 2));
    const t0 = performance.now();
    await submit(claimProject, { description: `item ${i}`, capability: "bench" });
    answered.push(since(t0));
    const item = await claimed;
    const ms = since(t0);
    if (!item) throw new Error("the claimer got nothing within 10 s");
    lat.push(ms);
    await claimWork.complete(item.workId, "ok");
  }
  const r = report(name, {
    ...extra,
    samples: lat.length,
    latencyMs: percentiles(lat),
    submitAnsweredMs: percentiles(answered),
  });
  return lat.length > 0 ? r.latencyMs.p99 : undefined;
}

let warmClaimP99;
try {
  // ——— 1. submit → claimed by a waiting claimer, Weft just started ———
  // Warm up: consumer, buckets, HTTP connection.
  for (let i = 0; i < WARMUP; i++) {
    await submit(claimProject, { description: "warm", capability: "bench" });
    const it = await claimWork.claim({ capability: "bench", timeoutMs: 5_000 });
    if (it) await claimWork.complete(it.workId, "ok");
  }
  claimP99 = await submitToClaim("weft-submit-to-claim", { warmup: WARMUP });

  // ——— 2. REST submissions/s and Weft's CPU per submission ———
  {
    const projectId = `bench-${randomId().slice(0, 12)}`;
    for (let i = 0; i < 50; i++) await submit(projectId, { description: "warm", capability: "bulk" });
    const lat = [];
    const cpu0 = processCpuMicros(weft.proc.pid);
    const use0 = processUsage(weft.proc.pid);
    const t0 = performance.now();
    const done = await bounded({ count: SUBMISSIONS, maxMs: MAX_MS, concurrency: CONCURRENCY }, async (i) => {
      const t = performance.now();
      await submit(projectId, { description: `bulk ${i}`, capability: "bulk", priority: 1 + (i % 10) });
      lat.push(since(t));
    });
    const elapsedMs = since(t0);
    const cpu1 = processCpuMicros(weft.proc.pid);
    const use1 = processUsage(weft.proc.pid);
    // Weft, as leader, mirrors each item's ledger write into the project's event stream (for SSE), one
    // event at a time; under load that trails the answers. Wait (at most 60 s) until every submission's
    // event is there, so the CPU it costs is counted too.
    const jsm = await claimFabric.jsm();
    const mirrored = async () =>
      (await jsm.streams.info(streams.weftEvents(projectId)).catch(() => undefined))?.state.messages ?? 0;
    const eventsAtLastAnswer = await mirrored();
    let events = eventsAtLastAnswer;
    while (events < 50 + done && since(t0) < elapsedMs + 60_000) {
      await new Promise((r) => setTimeout(r, 20));
      events = await mirrored();
    }
    const mirrorMs = Math.round(since(t0) - elapsedMs);
    const cpu2 = processCpuMicros(weft.proc.pid);
    rest = report("weft-rest-submit", {
      submissions: done,
      concurrency: CONCURRENCY,
      perSecond: Math.round((done / elapsedMs) * 1000),
      latencyMs: percentiles(lat),
      weftCpuMicrosPerSubmission:
        cpu0 !== undefined && cpu1 !== undefined ? Math.round((cpu1 - cpu0) / done) : null,
      weftCpuCores:
        cpu0 !== undefined && cpu1 !== undefined
          ? Math.round(((cpu1 - cpu0) / 1000 / elapsedMs) * 100) / 100
          : null,
      weftPerSubmission: usagePer(use0, use1, done),
      // Events mirrored when the last submission was answered, how long the rest took, and Weft's CPU per
      // submission until then (the mirror included).
      eventsMirroredAtLastAnswer: Math.max(0, eventsAtLastAnswer - 50),
      eventMirrorCaughtUpMs: events >= 50 + done ? mirrorMs : null,
      weftCpuMicrosPerSubmissionWithMirror:
        cpu0 !== undefined && cpu2 !== undefined ? Math.round((cpu2 - cpu0) / done) : null,
    });
  }
  // ——— 3. submit → claimed again, Weft warm (it has served the submission run) ———
  warmClaimP99 = await submitToClaim("weft-submit-to-claim-warm", { after: "the submission run" });

  report("weft-targets", {
    submitToClaimP99Ms: claimP99 ?? null,
    submitToClaimMet: claimP99 !== undefined ? claimP99 <= 10 : null,
    submitToClaimWarmP99Ms: warmClaimP99 ?? null,
    submitToClaimWarmMet: warmClaimP99 !== undefined ? warmClaimP99 <= 10 : null,
    submissionsPerSecond: rest.perSecond,
    submissionsPerSecondMet: rest.perSecond >= 2_000,
    weftCpuMicrosPerSubmission: rest.weftCpuMicrosPerSubmission,
    weftCpuMicrosPerSubmissionWithMirror: rest.weftCpuMicrosPerSubmissionWithMirror,
    weftStartMs: weft.startMs,
    weftRssMb: rssMb(weft.proc.pid),
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg().map(round2),
  });
} finally {
  await claimWork.close();
  await claimFabric.close();
  agent.destroy();
  weft.proc.kill("SIGTERM");
  await new Promise((r) => weft.proc.once("exit", r));
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
