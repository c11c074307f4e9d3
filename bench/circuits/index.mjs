#!/usr/bin/env node
// The circuit benchmark. Usage (after `pnpm build`):
//   pnpm bench:circuits --scale 1000 --replicas 2
//   pnpm bench:circuits --waves 1000:5m,2000:5m --mock-latency 0 --kill-replica --chart docs/img/x.png
// `--help` lists every option. Prints a live progress line and a table on stderr, and the report as one JSON
// line on stdout (also written to --out). Exits 1 when a circuit failed, a run is stuck or a slot is held.
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { report as printJson } from "../lib.mjs";
import { writeChart } from "./chart.mjs";
import { runCircuits } from "./harness.mjs";

const HELP = `pnpm bench:circuits [options]
  --scale N            circuits in one burst wave (default 100)
  --waves LIST         waves instead of --scale: "1000,2000" fires bursts one after another;
                       "1000:5m,2000:5m" keeps N circuits in flight for the duration (phases); mixable
  --duration D         soak: keep --scale circuits in flight for D (e.g. 30m, 8h)
  --replicas N         runner replicas, each its own process (default 2)
  --users N            users the circuits are spread over (default 0: one user per circuit)
  --mock-latency MS    mock provider latency per call (default 50)
  --mock-jitter MS     added uniform jitter (default 25)
  --rate-429 X         share of provider calls answered 429 (default 0)
  --rate-500 X         share of provider calls answered 500 (default 0)
  --cap N              RUNNER_MAX_CONCURRENT_RUNS, cluster-wide (default 1024)
  --per-user N         RUNNER_MAX_RUNS_PER_USER (default 8)
  --queue-max N        RUNNER_QUEUE_MAX (default: enough for the largest wave)
  --nats-cluster N     1 (default) or 3: a 3-node NATS cluster, the runner's streams and buckets R3
  --cancel K           cancel K random running runs through a replica that does not own them
  --pause              pause the cluster mid-wave for 0.5 s (time until every replica shows it), resume
  --kill-replica       kill -9 the replica running the most runs mid-wave
  --restart-nats       restart nats-server (node 1) mid-wave
  --kill-nats-node     kill -9 one node of --nats-cluster 3 mid-wave (it stays down)
  --inject-at F        when injectors fire: share of the first wave done (default 0.3)
  --inject-after D     when injectors fire: this long after the first wave starts (instead of --inject-at)
  --retries N          times a circuit that lost a run to a fault is tried again (default 2)
  --wave-timeout D     a wave's bound beyond its duration (default 10m)
  --settle D           how long the after-run checks wait for runs and slots to settle (default 90s)
  --window D           width of the time windows in the report (default 10s)
  --replica-env K=V    extra environment for every replica (repeatable), e.g. RUNNER_REPLICA_TTL_MS=3000
  --profile DIR        run the replicas with node --cpu-prof, profiles in DIR
  --runner-bin FILE    the runner to start (default apps/runner/dist/bin.js of this checkout), e.g. another
                       worktree's build, to compare two builds under the same driver
  --out FILE           write the JSON report to FILE too
  --chart FILE.png     draw per-wave latency and completion (vega-lite → SVG → PNG)
  --title TEXT         chart title
  --quiet              no progress line

The report (JSON on stdout, a table on stderr) has per wave completion and circuit latency, CPU per run,
the after-run checks, and runTimes: per agent, p50/p95/p99/max of queue time (started_at − created_at)
and run time (ended_at − started_at) in ms, from the run records (docs/benchmarks.md, "The circuit harness").`;

function duration(text, what) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!m) throw new Error(`${what}: "${text}" is not a duration; write e.g. 500ms, 30s, 5m or 8h`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"];
  return Number(m[1]) * unit;
}

function int(text, what, min = 0) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer ≥ ${min}, not "${text}"`);
  return n;
}

function rate(text, what) {
  const n = Number(text);
  if (!(n >= 0 && n <= 1)) throw new Error(`${what} must be a share in [0, 1], not "${text}"`);
  return n;
}

export function parseOptions(argv) {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      scale: { type: "string" },
      waves: { type: "string" },
      duration: { type: "string" },
      replicas: { type: "string" },
      users: { type: "string" },
      "mock-latency": { type: "string" },
      "mock-jitter": { type: "string" },
      "rate-429": { type: "string" },
      "rate-500": { type: "string" },
      cap: { type: "string" },
      "per-user": { type: "string" },
      "queue-max": { type: "string" },
      "nats-cluster": { type: "string" },
      cancel: { type: "string" },
      pause: { type: "boolean" },
      "kill-replica": { type: "boolean" },
      "restart-nats": { type: "boolean" },
      "kill-nats-node": { type: "boolean" },
      "inject-at": { type: "string" },
      "inject-after": { type: "string" },
      retries: { type: "string" },
      "wave-timeout": { type: "string" },
      settle: { type: "string" },
      window: { type: "string" },
      "replica-env": { type: "string", multiple: true },
      profile: { type: "string" },
      "runner-bin": { type: "string" },
      out: { type: "string" },
      chart: { type: "string" },
      title: { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean" },
    },
    allowPositionals: false,
  });
  if (v.help) return { help: true };
  const o = {};
  if (v.scale !== undefined) o.scale = int(v.scale, "--scale", 1);
  if (v.waves !== undefined) {
    o.waves = v.waves.split(",").map((w) => {
      const [n, d] = w.split(":");
      return {
        circuits: int(n, "--waves circuits", 1),
        ...(d ? { durationMs: duration(d, "--waves") } : {}),
      };
    });
  }
  if (v.duration !== undefined) {
    if (o.waves) throw new Error("--duration and --waves do not go together; use --waves N:D");
    o.waves = [{ circuits: o.scale ?? 100, durationMs: duration(v.duration, "--duration") }];
  }
  if (v.replicas !== undefined) o.replicas = int(v.replicas, "--replicas", 1);
  if (v.users !== undefined) o.users = int(v.users, "--users", 0);
  if (v["mock-latency"] !== undefined) o.mockLatencyMs = int(v["mock-latency"], "--mock-latency");
  if (v["mock-jitter"] !== undefined) o.mockJitterMs = int(v["mock-jitter"], "--mock-jitter");
  if (v["rate-429"] !== undefined) o.rate429 = rate(v["rate-429"], "--rate-429");
  if (v["rate-500"] !== undefined) o.rate500 = rate(v["rate-500"], "--rate-500");
  if (v.cap !== undefined) o.cap = int(v.cap, "--cap", 1);
  if (v["per-user"] !== undefined) o.perUserCap = int(v["per-user"], "--per-user", 3);
  if (v["queue-max"] !== undefined) o.queueMax = int(v["queue-max"], "--queue-max", 0);
  if (v["nats-cluster"] !== undefined) {
    o.natsCluster = int(v["nats-cluster"], "--nats-cluster", 1);
    if (o.natsCluster !== 1 && o.natsCluster !== 3) throw new Error("--nats-cluster is 1 or 3");
  }
  if (v.cancel !== undefined) o.cancel = int(v.cancel, "--cancel", 0);
  o.pause = v.pause ?? false;
  o.killReplica = v["kill-replica"] ?? false;
  o.restartNats = v["restart-nats"] ?? false;
  o.killNatsNode = v["kill-nats-node"] ?? false;
  if (o.killNatsNode && o.natsCluster !== 3) throw new Error("--kill-nats-node needs --nats-cluster 3");
  if (v["inject-at"] !== undefined) o.injectAt = rate(v["inject-at"], "--inject-at");
  if (v["inject-after"] !== undefined) o.injectAfterMs = duration(v["inject-after"], "--inject-after");
  if (v.retries !== undefined) o.retries = int(v.retries, "--retries", 0);
  if (v["wave-timeout"] !== undefined) o.waveTimeoutMs = duration(v["wave-timeout"], "--wave-timeout");
  if (v.settle !== undefined) o.settleMs = duration(v.settle, "--settle");
  if (v.window !== undefined) o.windowMs = duration(v.window, "--window");
  o.replicaEnv = {};
  for (const kv of v["replica-env"] ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0 || !/^[A-Z][A-Z0-9_]*$/.test(kv.slice(0, i))) {
      throw new Error(`--replica-env wants NAME=value, not "${kv}"`);
    }
    o.replicaEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (v["runner-bin"]) o.runnerBin = v["runner-bin"];
  if (v.profile) o.nodeArgs = ["--cpu-prof", `--cpu-prof-dir=${v.profile}`];
  return { options: o, out: v.out, chart: v.chart, title: v.title, quiet: v.quiet ?? false };
}

function pad(s, n) {
  return String(s).padEnd(n);
}

/** The human-readable summary. */
export function table(r) {
  const lines = [];
  const fmt = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`);
  lines.push(
    `${pad("wave", 16)}${pad("circuits", 10)}${pad("done %", 9)}${pad("failed", 8)}${pad("silent", 8)}${pad("retried", 9)}` +
      `${pad("p50", 9)}${pad("p95", 9)}${pad("p99", 9)}${pad("max", 9)}${pad("runs/s", 8)}per replica %`,
  );
  for (const w of r.waves) {
    lines.push(
      `${pad(`${w.wave} ${w.name}`, 16)}${pad(w.circuits, 10)}${pad(w.completionPercent, 9)}${pad(w.failed + w.incomplete, 8)}` +
        `${pad(w.silentRegressions, 8)}${pad(w.retried, 9)}${pad(fmt(w.latencyMs.p50), 9)}${pad(fmt(w.latencyMs.p95), 9)}` +
        `${pad(fmt(w.latencyMs.p99), 9)}${pad(fmt(w.latencyMs.max), 9)}${pad(w.runsPerSecond, 8)}` +
        Object.entries(w.perReplicaShare)
          .map(([k, v]) => `${k} ${v}`)
          .join(", "),
    );
  }
  lines.push("");
  lines.push(`${pad("process", 12)}${pad("peak RSS", 12)}${pad("CPU s", 10)}CPU % during the waves`);
  for (const [name, p] of Object.entries(r.processes ?? {})) {
    lines.push(
      `${pad(name, 12)}${pad(`${p.peakRssMb} MB`, 12)}${pad(p.cpuSeconds, 10)}${r.cpu?.cpuPercentDuringWaves?.[name] ?? "-"}`,
    );
  }
  const per = r.cpu?.cpuMsPerRun ?? {};
  lines.push(
    `CPU per run ended: replicas ${per.replicas} ms, nats-server ${per.nats} ms, driver ${per.driver} ms (${r.cpu?.runsEnded} runs)`,
  );
  const msgs = r.cpu?.natsMsgsPerRun;
  if (msgs)
    lines.push(
      `NATS messages per run ended: replicas sent ${msgs.replicasSent}, received ${msgs.replicasReceived}; driver and others ${msgs.others}`,
    );
  const a = r.after;
  lines.push("");
  lines.push(
    `after the run: ${a.runRecords} run records, stuck running ${a.stuckRunning}, stuck queued ${a.stuckQueued}, ` +
      `quota slots held ${a.quotaSlotsHeld}, global slots held ${a.globalSlotsHeld} (settled in ${a.settledInMs} ms)`,
  );
  const times = r.runTimes;
  if (times) {
    const four = (p) => `${p.p50} / ${p.p95} / ${p.p99} / ${p.max}`;
    lines.push("");
    lines.push(
      `${pad("run times, ms", 20)}${pad("queue p50 / p95 / p99 / max", 32)}run p50 / p95 / p99 / max`,
    );
    for (const [agent, t] of [...Object.entries(times.byAgent), ["all", times.all]]) {
      lines.push(`${pad(agent, 20)}${pad(four(t.queueMs), 32)}${four(t.runMs)}`);
    }
  }
  for (const [k, v] of Object.entries(r.injections ?? {})) lines.push(`${k}: ${JSON.stringify(v)}`);
  lines.push(
    `load average at start ${r.machine.loadAtStart.join(" ")}, at end ${r.machine.loadAtEnd.join(" ")}`,
  );
  return lines.join("\n");
}

/** Whether the run met the correctness bar: every circuit completed or was cancelled on purpose, nothing left. */
export function clean(r) {
  const a = r.after;
  return (
    r.waves.every((w) => w.failed === 0 && w.silentRegressions === 0 && w.incomplete === 0) &&
    a.stuckRunning === 0 &&
    a.stuckQueued === 0 &&
    a.quotaSlotsHeld === 0 &&
    a.globalSlotsHeld === 0
  );
}

// A request timing out inside the NATS client (its own timers, under heavy load) must not end a long run:
// it is counted and reported instead.
const stray = [];
process.on("unhandledRejection", (err) => {
  stray.push(String(err));
  process.stderr.write(`unhandled rejection (counted, the run goes on): ${String(err)}\n`);
});

async function main() {
  let parsed;
  try {
    parsed = parseOptions(process.argv.slice(2).filter((a) => a !== "--"));
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const loadAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
  const tty = process.stderr.isTTY;
  let lastPrinted = 0;
  const progress = parsed.quiet
    ? undefined
    : (line) => {
        if (tty) process.stderr.write(`\r\x1b[2K${line}`);
        else if (Date.now() - lastPrinted >= 5_000) {
          lastPrinted = Date.now();
          process.stderr.write(`${line}\n`);
        }
      };
  const r = await runCircuits(parsed.options, { progress });
  if (tty && progress) process.stderr.write("\n");
  r.machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    loadAtStart,
    loadAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    note: "shared 2-core machine; compare runs with each other, load average alongside",
  };
  r.unhandledRejections = stray.length > 0 ? stray.slice(0, 20) : undefined;
  r.command = `pnpm bench:circuits ${process.argv.slice(2).join(" ")}`.trim();
  r.clean = clean(r);
  process.stderr.write(`${table(r)}\n`);
  if (parsed.out) writeFileSync(parsed.out, `${JSON.stringify(r, null, 2)}\n`);
  if (parsed.chart) {
    await writeChart(r, parsed.chart, parsed.title ?? r.command);
    process.stderr.write(`chart: ${parsed.chart}\n`);
  }
  printJson("circuits", r);
  process.exitCode = r.clean ? 0 : 1;
}

await main();
