// The circuit harness: N runner replicas (separate processes) against one NATS, circuits fired in waves or
// sustained phases, completion observed by push (a KV watch of the run records), fault injectors, and the
// after-run checks (stuck runs, held quota slots, global slots).
//
// A circuit is three runs for one user — mock-researcher → mock-editor → mock-evaluator — coordinated only
// by the runner's channel and memory tools. It counts as completed only when its three runs completed AND
// its three memory values and the evaluation are stored with the right content; three "completed" runs
// without them are a silent regression.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { bucketKeys, Fabric } from "@loominal/fabric";
import { buckets, keys } from "@loominal/protocol";
import { httpJson, percentiles } from "../lib.mjs";
import { connectionCounts, ProcessMeter, startNats, startReplica } from "./processes.mjs";

const ROLES = ["researcher", "editor", "evaluator"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export const DEFAULTS = {
  replicas: 2,
  scale: 100,
  /** [{circuits, durationMs?}]: a burst wave fires `circuits` at once; a phase keeps them in flight for durationMs. */
  waves: undefined,
  users: 0,
  mockLatencyMs: 50,
  mockJitterMs: 25,
  rate429: 0,
  rate500: 0,
  cap: 1024,
  perUserCap: 8,
  queueMax: 0,
  natsCluster: 1,
  cancel: 0,
  pause: false,
  killReplica: false,
  restartNats: false,
  killNatsNode: false,
  injectAt: 0.3,
  /** When set, injectors fire this long after the first wave starts instead (ms). */
  injectAfterMs: undefined,
  retries: 2,
  waveTimeoutMs: 600_000,
  settleMs: 90_000,
  windowMs: 10_000,
  postConcurrency: 256,
  replicaEnv: {},
  nodeArgs: [],
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** A counting semaphore. */
function limiter(n) {
  let active = 0;
  const queue = [];
  return async (fn) => {
    if (active >= n) await new Promise((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

export async function runCircuits(options, { progress } = {}) {
  const o = { ...DEFAULTS, ...options };
  const waves = o.waves ?? [{ circuits: o.scale }];
  const totalCircuits = waves.reduce((n, w) => n + (w.durationMs ? 0 : w.circuits), 0);
  const queueMax = o.queueMax || Math.max(4_096, totalCircuits * 3 + 1_024);
  const t0 = performance.now();
  const now = () => performance.now() - t0;

  const nats = await startNats(o.natsCluster);
  const baseEnv = {
    NATS_URL: nats.url,
    RUNNER_MAX_CONCURRENT_RUNS: String(o.cap),
    RUNNER_MAX_RUNS_PER_USER: String(o.perUserCap),
    RUNNER_QUEUE_MAX: String(queueMax),
    RUNNER_MOCK_LATENCY_MS: String(o.mockLatencyMs),
    RUNNER_MOCK_JITTER_MS: String(o.mockJitterMs),
    RUNNER_MOCK_429_RATE: String(o.rate429),
    RUNNER_MOCK_500_RATE: String(o.rate500),
    RUNNER_NATS_REPLICAS: String(o.natsCluster > 1 ? Math.min(3, o.natsCluster) : 1),
    ...o.replicaEnv,
  };
  const replicas = [];
  const meters = new Map();
  let fabric;
  const stopAll = async () => {
    for (const m of meters.values()) m.stop();
    await Promise.all(replicas.map((r) => r.kill("SIGTERM").catch(() => undefined)));
    await fabric?.close().catch(() => undefined);
    await nats.stop().catch(() => undefined);
  };
  try {
    // The first replica creates the streams and buckets; the others join.
    const startOne = async (i) => {
      const r = await startReplica(
        { ...baseEnv, RUNNER_REPLICA_ID: `bench-${i + 1}` },
        { nodeArgs: o.nodeArgs, ...(o.runnerBin ? { bin: o.runnerBin } : {}) },
      );
      replicas.push(r);
      meters.set(r.id, new ProcessMeter(r.proc.pid, 1_000, t0));
    };
    await startOne(0);
    await Promise.all(Array.from({ length: o.replicas - 1 }, (_, i) => startOne(i + 1)));
    replicas.sort((a, b) => a.id.localeCompare(b.id));
    nats.pids().forEach((pid, i) => {
      meters.set(`nats-${i + 1}`, new ProcessMeter(pid, 1_000, t0));
    });
    meters.set("driver", new ProcessMeter(process.pid, 1_000, t0));

    fabric = await Fabric.connect({ nats: { servers: nats.servers }, name: "bench-circuits" });
    const runsKv = await fabric.kvm.open(buckets.runnerRuns());
    const memoryKv = await fabric.kvm.open(buckets.runnerMemory());
    const evalsKv = await fabric.kvm.open(buckets.runnerEvals());
    const quotasKv = await fabric.kvm.open(buckets.runnerQuotas());
    const replicasKv = await fabric.kvm.open(buckets.runnerReplicas());

    const h = new Driver({
      o,
      replicas,
      nats,
      now,
      meters,
      memoryKv,
      evalsKv,
      runsKv,
      quotasKv,
      replicasKv,
      fabric,
    });
    await h.watch();
    const report = await h.run(waves, progress);
    report.setup = {
      replicas: o.replicas,
      natsNodes: o.natsCluster,
      cap: o.cap,
      perUserCap: o.perUserCap,
      queueMax,
      users: o.users || "one per circuit",
      mock: { latencyMs: o.mockLatencyMs, jitterMs: o.mockJitterMs, rate429: o.rate429, rate500: o.rate500 },
      replicaEnv: o.replicaEnv,
    };
    report.processes = Object.fromEntries(
      [...meters.entries()].map(([name, m]) => {
        m.sample();
        const elapsed = Math.max(1, m.lastAt - m.startedAt);
        return [
          name,
          {
            peakRssMb: round(m.peakRssBytes / 2 ** 20),
            cpuSeconds: round(m.cpuMs / 1_000, 2),
            avgCpuPercent: round((m.cpuMs / elapsed) * 100),
            rssFirstMb: m.series[0] ? round(m.series[0].rssBytes / 2 ** 20) : null,
            rssLastMb: m.series.at(-1) ? round(m.series.at(-1).rssBytes / 2 ** 20) : null,
          },
        ];
      }),
    );
    h.stop();
    return report;
  } finally {
    await stopAll();
  }
}

class Driver {
  constructor(ctx) {
    Object.assign(this, ctx);
    /** runId → {c, role, status, replicaId, stopReason, endAt} */
    this.runs = new Map();
    /** Records seen before their POST answered. */
    this.early = new Map();
    /** editor runId → evaluation */
    this.evaluations = new Map();
    /** evaluator runId → evaluation */
    this.evaluationsBy = new Map();
    this.evalWaiters = new Map();
    /** replica id → pause_since in its last heartbeat */
    this.heartbeatPause = new Map();
    this.pauseWaiters = [];
    this.counters = {
      posts: 0,
      http429: 0,
      httpBackpressure: 0,
      http503: 0,
      httpOther: 0,
      netErrors: 0,
      watchRestarts: 0,
      readRetries: 0,
    };
    this.rr = 0;
    this.post = limiter(this.o.postConcurrency);
    this.watchers = [];
    this.wave = undefined;
    this.injections = {};
    this.finishedRuns = 0;
  }

  // ------------------------------------------------------------------ observation (push)

  async watch() {
    // A watch that fails (its server went away) is started again from the revision after the last seen.
    const follow = async (kv, key, onEntry) => {
      let last = 0;
      const start = async () => {
        const w = await kv.watch(
          last > 0 ? { key, resumeFromRevision: last + 1 } : { key, include: "updates" },
        );
        this.watchers.push(w);
        void (async () => {
          try {
            for await (const e of w) {
              last = Math.max(last, e.revision);
              if (e.operation !== "PUT") continue;
              try {
                onEntry(e);
              } catch {
                // An unreadable value is not ours to judge here.
              }
            }
          } catch {
            this.counters.watchRestarts++;
          }
          while (!this.stopped) {
            await sleep(250);
            try {
              await start();
              return;
            } catch {
              this.counters.watchRestarts++;
            }
          }
        })();
      };
      await start();
    };
    await follow(this.runsKv, keys.runnerRunsPrefix(), (e) => this.#onRecord(e.json()));
    await follow(this.evalsKv, ">", (e) => {
      const v = e.json();
      this.evaluations.set(v.run_id, { ...v, key: e.key });
      this.evaluationsBy.set(v.by_run_id, { ...v, key: e.key });
      this.evalWaiters.get(v.run_id)?.();
    });
    await follow(this.replicasKv, keys.runnerReplicasPrefix(), (e) => {
      const hb = e.json();
      this.heartbeatPause.set(hb.replica_id, hb.pause_since ?? null);
      for (const w of this.pauseWaiters) w();
    });
  }

  stop() {
    this.stopped = true;
    for (const w of this.watchers) w.stop();
  }

  #onRecord(rec) {
    const r = this.runs.get(rec.run_id);
    if (!r) {
      this.early.set(rec.run_id, rec);
      return;
    }
    this.#apply(r, rec);
  }

  #apply(r, rec) {
    if (r.endAt !== undefined) return;
    r.status = rec.status;
    r.replicaId = rec.replica_id;
    r.stopReason = rec.stop_reason;
    if (!TERMINAL.has(rec.status)) return;
    r.endAt = this.now();
    this.finishedRuns++;
    const w = r.c.wave;
    w.runsEnded++;
    this.#window(r.endAt).runsEnded++;
    w.byReplica[rec.replica_id] = (w.byReplica[rec.replica_id] ?? 0) + 1;
    if (rec.status !== "completed" && !r.c.aborting) {
      r.c.failure = `${r.role} ${rec.status}: ${rec.stop_reason ?? rec.error ?? "?"}`;
      this.#abort(r.c);
    }
    this.#maybeSettle(r.c);
  }

  #maybeSettle(c) {
    if (!c.submitted) return;
    for (const id of c.runIds) if (this.runs.get(id)?.endAt === undefined) return;
    c.settle();
  }

  /** Cancels what is left of a circuit that can no longer complete (a run failed or was cancelled). */
  #abort(c) {
    if (c.aborting) return;
    c.aborting = true;
    for (const id of c.runIds) {
      if (this.runs.get(id)?.endAt === undefined)
        void this.#cancel(id, "circuit aborted").catch(() => undefined);
    }
  }

  async #cancel(runId, reason, via) {
    const r = via ?? this.#pick();
    const res = await httpJson(`${r.url}/v1/runs/${runId}/cancel`, {
      method: "POST",
      body: { reason },
      timeoutMs: 15_000,
    });
    const timing = /cancel;dur=([\d.]+)/.exec(String(res.headers["server-timing"] ?? ""));
    return { status: res.status, body: res.json, serverMs: timing ? Number(timing[1]) : undefined };
  }

  #alive() {
    return this.replicas.filter((r) => r.alive);
  }

  #pick() {
    const alive = this.#alive();
    this.rr = (this.rr + 1) % Math.max(1, alive.length);
    return alive[this.rr] ?? this.replicas[0];
  }

  // ------------------------------------------------------------------ firing

  async #postRun(c, role, deadline) {
    const body = JSON.stringify({
      agent: `mock-${role}`,
      prompt: `Your circuit_id is ${c.id}.`,
      user_id: c.user,
      // A POST that got no answer (its replica died, or it timed out) may still have admitted the run: the
      // same key makes the POST sent again return that run instead of admitting a second one.
      idempotency_key: `${c.id}-${role}`,
      stream: false,
    });
    while (this.now() < deadline && !c.aborting) {
      const replica = this.#pick();
      this.counters.posts++;
      let res;
      try {
        res = await this.post(() =>
          httpJson(`${replica.url}/v1/runs`, { method: "POST", body, timeoutMs: 30_000 }),
        );
      } catch (err) {
        this.counters.netErrors++;
        const kind = err?.code ?? err?.cause?.code ?? err?.name ?? "error";
        this.counters.netErrorKinds ??= {};
        this.counters.netErrorKinds[kind] = (this.counters.netErrorKinds[kind] ?? 0) + 1;
        await sleep(100);
        continue;
      }
      const json = res.json;
      if (res.status === 202) return json.run_id;
      if (res.status === 429) {
        if (json.code === "backpressure") this.counters.httpBackpressure++;
        else this.counters.http429++;
        await sleep(json.code === "backpressure" ? 100 + Math.random() * 200 : 250);
      } else if (res.status === 503) {
        this.counters.http503++;
        await sleep(200);
      } else {
        this.counters.httpOther++;
        throw new Error(`POST /v1/runs answered ${res.status}: ${JSON.stringify(json)}`);
      }
    }
    return undefined;
  }

  /** One attempt at a circuit: posts its three runs, resolves when every posted run is terminal. */
  async #attempt(n, attempt, wave, user, deadline) {
    let settle;
    const c = {
      n,
      id: attempt === 0 ? `c${n}` : `c${n}r${attempt}`,
      user,
      wave,
      t0: this.now(),
      runIds: [],
      roles: {},
      submitted: false,
      aborting: false,
      failure: undefined,
      injected: undefined,
      settled: new Promise((r) => {
        settle = r;
      }),
    };
    c.settle = settle;
    for (const role of ROLES) {
      const runId = await this.#postRun(c, role, deadline);
      if (runId === undefined) {
        if (!c.aborting) c.failure = `${role} not admitted before the wave deadline`;
        this.#abort(c);
        break;
      }
      const r = { c, role, status: "queued", replicaId: undefined, stopReason: undefined, endAt: undefined };
      this.runs.set(runId, r);
      c.runIds.push(runId);
      c.roles[role] = runId;
      const early = this.early.get(runId);
      if (early) {
        this.early.delete(runId);
        this.#apply(r, early);
      }
      if (c.aborting) void this.#cancel(runId, "circuit aborted").catch(() => undefined);
    }
    c.submitted = true;
    this.#maybeSettle(c);
    const timer = setTimeout(() => c.settle(), Math.max(0, deadline - this.now()));
    await c.settled;
    clearTimeout(timer);
    c.endAt = Math.max(...c.runIds.map((id) => this.runs.get(id)?.endAt ?? this.now()));
    const ended = c.runIds.every((id) => this.runs.get(id)?.endAt !== undefined);
    if (!ended) return { c, outcome: "incomplete" };
    if (c.injected === "cancel") return { c, outcome: "cancelled" };
    if (c.failure || c.runIds.length < 3) return { c, outcome: "failed" };
    return { c, outcome: (await this.#verify(c)) ? "completed" : "silent" };
  }

  /** The circuit's output: three memory values and the evaluation, with the right content. */
  async #verify(c) {
    const get = async (suffix) => {
      const e = await this.#read(() =>
        this.memoryKv.get(keys.runnerMemory("user", c.user, `${c.id}-${suffix}`)),
      );
      return e?.operation === "PUT" ? e.json().value : undefined;
    };
    const [research, edited, scored] = await Promise.all([
      get("research"),
      get("research-edited"),
      get("research-scored"),
    ]);
    const wrong = (why) => {
      c.wrong = why;
      return false;
    };
    if (research?.circuit !== c.id) return wrong(research ? "research value wrong" : "research missing");
    if (edited?.edited !== true || edited.from?.circuit !== c.id)
      return wrong(edited ? "edited value wrong" : "edited missing");
    if (scored?.score !== 0.8) return wrong(scored ? "score value wrong" : "score missing");
    const editor = c.roles.editor;
    if (!this.evaluations.has(editor)) {
      // The evaluation watch may trail the run-record watch by a moment.
      await Promise.race([new Promise((r) => this.evalWaiters.set(editor, r)), sleep(5_000)]);
      this.evalWaiters.delete(editor);
    }
    if (!this.evaluations.has(editor)) {
      // Not seen by the watch (it may have lost its server): read the bucket itself.
      const found = await this.#read(async () => {
        const out = [];
        for await (const k of await this.evalsKv.keys(keys.runnerEvaluationsPrefix(editor))) out.push(k);
        return out;
      });
      for (const k of found) {
        const e = await this.#read(() => this.evalsKv.get(k));
        if (e?.operation === "PUT") this.evaluations.set(editor, { ...e.json(), key: k });
      }
      if (found.length > 0) this.counters.evaluationsReadBack = (this.counters.evaluationsReadBack ?? 0) + 1;
    }
    let ev = this.evaluations.get(editor);
    if (!ev) {
      // A POST that timed out may still have admitted its run, and the one posted again is a second editor:
      // the evaluator then scores whichever editor published first. The circuit's output is complete when
      // its evaluator scored an editor run of the same circuit.
      const by = this.evaluationsBy.get(c.roles.evaluator);
      const scored = by
        ? await this.#read(() => this.runsKv.get(keys.runnerRun(by.run_id))).then((e) =>
            e?.operation === "PUT" ? e.json() : undefined,
          )
        : undefined;
      if (scored?.agent === "mock-editor" && scored.user_id === c.user && scored.status === "completed") {
        this.counters.evaluatedDuplicateEditor = (this.counters.evaluatedDuplicateEditor ?? 0) + 1;
        ev = { ...by, run_id: editor };
      }
    }
    if (!ev) return wrong("evaluation missing");
    if (ev.by_run_id !== c.roles.evaluator || ev.score !== 0.8) return wrong("evaluation wrong");
    const stored = await this.#read(() => this.evalsKv.get(ev.key));
    return stored?.operation === "PUT" ? true : wrong("evaluation missing");
  }

  /** A read that survives a NATS node going away: retried for up to ~10 s. */
  async #read(fn) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= 20) throw err;
        this.counters.readRetries++;
        await sleep(500);
      }
    }
  }

  /** A circuit with retries: a run lost to a fault (failed, not completed) is tried again as a new circuit. */
  async #circuit(n, wave, deadline) {
    const user = this.o.users > 0 ? `bench-u${n % this.o.users}` : `bench-c${n}`;
    const release = await this.#userSlot(user);
    try {
      for (let attempt = 0; ; attempt++) {
        const { c, outcome } = await this.#attempt(n, attempt, wave, user, deadline);
        if (outcome === "failed" && attempt < this.o.retries && this.now() < deadline) {
          wave.retried++;
          wave.losses[c.failure] = (wave.losses[c.failure] ?? 0) + 1;
          continue;
        }
        wave[outcome]++;
        if (outcome === "silent") wave.silentReasons[c.wrong] = (wave.silentReasons[c.wrong] ?? 0) + 1;
        if (outcome === "failed") wave.losses[c.failure] = (wave.losses[c.failure] ?? 0) + 1;
        if (outcome === "completed") {
          const ms = c.endAt - c.t0;
          wave.latencies.push(ms);
          this.#window(c.endAt).latencies.push(ms);
          // Latency of the whole circuit counts from its first attempt.
          if (attempt > 0) wave.retriedLatencies.push(c.endAt - wave.firstT0.get(n));
        }
        return outcome;
      }
    } finally {
      release();
    }
  }

  /** At most floor(perUserCap / 3) circuits of one user in flight, so its three runs always fit its quota. */
  async #userSlot(user) {
    if (this.o.users === 0) return () => {};
    this.userSlots ??= new Map();
    const per = Math.max(1, Math.floor(this.o.perUserCap / 3));
    let s = this.userSlots.get(user);
    if (!s) {
      s = limiter(per);
      this.userSlots.set(user, s);
    }
    let release;
    const held = new Promise((r) => {
      release = r;
    });
    let entered;
    const inside = new Promise((r) => {
      entered = r;
    });
    void s(async () => {
      entered();
      await held;
    });
    await inside;
    return release;
  }

  #window(at) {
    const i = Math.floor(at / this.o.windowMs);
    this.windows ??= [];
    while (this.windows.length <= i) {
      this.windows.push({ index: this.windows.length, latencies: [], runsEnded: 0 });
    }
    return this.windows[i];
  }

  // ------------------------------------------------------------------ waves

  async run(waves, progress) {
    const started = this.now();
    const results = [];
    let injected = false;
    const liveLine = setInterval(() => progress?.(this.#progressLine(waves.length)), 1_000);
    for (const m of this.meters.values()) m.sample();
    const cpuBefore = new Map([...this.meters.entries()].map(([k, m]) => [k, m.cpuMs]));
    const msgsBefore = await connectionCounts(this.nats.monitorUrl);
    let cpuDuring;
    let msgsAfter;
    try {
      for (const [i, spec] of waves.entries()) {
        const wave = {
          index: i + 1,
          name: spec.durationMs
            ? `${spec.circuits}:${Math.round(spec.durationMs / 1000)}s`
            : `${spec.circuits}`,
          kind: spec.durationMs ? "phase" : "burst",
          fired: 0,
          completed: 0,
          failed: 0,
          silent: 0,
          cancelled: 0,
          incomplete: 0,
          retried: 0,
          losses: {},
          silentReasons: {},
          latencies: [],
          retriedLatencies: [],
          runsEnded: 0,
          byReplica: {},
          firstT0: new Map(),
          t0: this.now(),
          spec,
        };
        this.wave = wave;
        const deadline = wave.t0 + (spec.durationMs ?? 0) + this.o.waveTimeoutMs;
        const fire = (n) => {
          wave.fired++;
          wave.firstT0.set(n, this.now());
          return this.#circuit(n, wave, deadline);
        };
        const injector =
          !injected && this.#wantsInjection()
            ? setInterval(() => {
                const frac = spec.durationMs
                  ? (this.now() - wave.t0) / spec.durationMs
                  : (wave.completed + wave.failed + wave.silent + wave.cancelled) / spec.circuits;
                const due =
                  this.o.injectAfterMs !== undefined
                    ? this.now() - wave.t0 >= this.o.injectAfterMs
                    : frac >= this.o.injectAt;
                // Faults are meant to hit runs in flight: wait for one to be running.
                if (due && !injected && this.#runningRuns().length > 0) {
                  injected = true;
                  clearInterval(injector);
                  this.injecting = this.#inject().catch((err) => {
                    this.injections.error = String(err);
                  });
                }
              }, 20)
            : undefined;
        let next = results.reduce((n, w) => n + w.fired, 0);
        if (spec.durationMs) {
          const until = wave.t0 + spec.durationMs;
          await Promise.all(
            Array.from({ length: spec.circuits }, async () => {
              while (this.now() < until) await fire(next++);
            }),
          );
        } else {
          await Promise.all(Array.from({ length: spec.circuits }, () => fire(next++)));
        }
        clearInterval(injector);
        await this.injecting;
        wave.elapsedMs = this.now() - wave.t0;
        results.push(wave);
      }
    } finally {
      clearInterval(liveLine);
      for (const m of this.meters.values()) m.sample();
      cpuDuring = new Map([...this.meters.entries()].map(([k, m]) => [k, m.cpuMs - (cpuBefore.get(k) ?? 0)]));
      msgsAfter = await connectionCounts(this.nats.monitorUrl);
    }
    const elapsedMs = this.now() - started;
    const runsEnded = results.reduce((n, w) => n + w.runsEnded, 0);
    const sum = (pred) => [...cpuDuring.entries()].filter(([k]) => pred(k)).reduce((n, [, v]) => n + v, 0);
    const perRun = (ms) => (runsEnded > 0 ? round(ms / runsEnded, 2) : null);
    const cpu = {
      runsEnded,
      wavesElapsedMs: Math.round(elapsedMs),
      cpuPercentDuringWaves: Object.fromEntries(
        [...cpuDuring.entries()].map(([k, v]) => [k, round((v / Math.max(1, elapsedMs)) * 100)]),
      ),
      cpuMsPerRun: {
        replicas: perRun(sum((k) => k.startsWith("bench-"))),
        nats: perRun(sum((k) => k.startsWith("nats-"))),
        driver: perRun(sum((k) => k === "driver")),
      },
    };
    if (msgsBefore && msgsAfter) {
      // NATS messages per run ended, from the server's per-connection counters: what the replicas sent (each
      // KV read or write, publish, ack, request is one) and received (replies, deliveries), and the driver's
      // watches. A replica that restarted mid-run (a fault) is not counted.
      const delta = (pred, field) =>
        Object.entries(msgsAfter)
          .filter(([name]) => pred(name))
          .reduce((n, [name, c]) => n + c[field] - (msgsBefore[name]?.[field] ?? 0), 0);
      const replica = (name) => name.startsWith("loominal-runner ");
      cpu.natsMsgsPerRun = {
        replicasSent: perRun(delta(replica, "inMsgs")),
        replicasReceived: perRun(delta(replica, "outMsgs")),
        others: perRun(delta((n) => !replica(n), "inMsgs") + delta((n) => !replica(n), "outMsgs")),
      };
    }
    const after = await this.#afterRun();
    return {
      elapsedMs: Math.round(elapsedMs),
      waves: results.map((w) => this.#waveReport(w)),
      windows: (this.windows ?? []).map((w) => ({
        startS: (w.index * this.o.windowMs) / 1000,
        circuits: w.latencies.length,
        runsPerSecond: round(w.runsEnded / (this.o.windowMs / 1000)),
        latencyMs: percentiles(w.latencies),
        // CPU the replicas and nats-server used in the window per run that ended in it: what a run costs
        // as the state grows, whatever else the machine is doing.
        cpuMsPerRun: this.#windowCpu(w),
      })),
      injections: this.injections,
      cpu,
      http: this.counters,
      ...after,
    };
  }

  #windowCpu(w) {
    if (w.runsEnded === 0) return undefined;
    const from = w.index * this.o.windowMs;
    const to = from + this.o.windowMs;
    // CPU time of a process at `t`: its last sample at or before t.
    const at = (m, t) => {
      let v;
      for (const x of m.series) {
        if (x.at > t) break;
        v = x.cpuMs;
      }
      return v;
    };
    const used = (prefix) => {
      let ms = 0;
      for (const [k, m] of this.meters) {
        if (!k.startsWith(prefix)) continue;
        const a = at(m, from) ?? m.series[0]?.cpuMs;
        const b = at(m, to);
        if (a !== undefined && b !== undefined) ms += b - a;
      }
      return round(ms / w.runsEnded, 2);
    };
    return { replicas: used("bench-"), nats: used("nats-") };
  }

  #waveReport(w) {
    const considered = w.fired - w.cancelled;
    const totalRuns = Object.values(w.byReplica).reduce((a, b) => a + b, 0);
    return {
      wave: w.index,
      name: w.name,
      kind: w.kind,
      circuits: w.fired,
      completed: w.completed,
      completionPercent: considered > 0 ? round((w.completed / considered) * 100, 2) : 100,
      failed: w.failed,
      silentRegressions: w.silent,
      silentReasons: w.silent > 0 ? w.silentReasons : undefined,
      incomplete: w.incomplete,
      cancelledByInjector: w.cancelled,
      retried: w.retried,
      losses: w.losses,
      elapsedMs: Math.round(w.elapsedMs),
      runsEnded: w.runsEnded,
      runsPerSecond: round(w.runsEnded / (w.elapsedMs / 1000)),
      latencyMs: percentiles(w.latencies),
      retriedLatencyMs: w.retriedLatencies.length > 0 ? percentiles(w.retriedLatencies) : undefined,
      perReplicaShare: Object.fromEntries(
        Object.entries(w.byReplica)
          .sort()
          .map(([k, v]) => [k, round((v / Math.max(1, totalRuns)) * 100, 1)]),
      ),
    };
  }

  #progressLine(nWaves) {
    const w = this.wave;
    if (!w) return "starting";
    const done = w.completed + w.failed + w.silent + w.cancelled + w.incomplete;
    const elapsed = (this.now() - w.t0) / 1000;
    const rate = w.runsEnded / Math.max(0.001, elapsed);
    const target = w.spec.durationMs
      ? `${Math.round(elapsed)}/${Math.round(w.spec.durationMs / 1000)}s`
      : `${done}/${w.spec.circuits}`;
    const c = this.counters;
    return (
      `[${(this.now() / 1000).toFixed(0)}s] wave ${w.index}/${nWaves} ${target}: ${w.completed} completed, ` +
      `${w.failed} failed, ${w.silent} silent, ${w.retried} retried | ${w.runsEnded} runs, ${rate.toFixed(0)} runs/s, ` +
      `in flight ${w.fired - done} | 429 ${c.http429 + c.httpBackpressure}, 503 ${c.http503}, net ${c.netErrors}`
    );
  }

  // ------------------------------------------------------------------ injectors

  #wantsInjection() {
    const o = this.o;
    return o.cancel > 0 || o.pause || o.killReplica || o.restartNats || o.killNatsNode;
  }

  async #inject() {
    const o = this.o;
    if (o.cancel > 0) this.injections.cancel = await this.#injectCancel(o.cancel);
    if (o.pause) this.injections.pause = await this.#injectPause();
    if (o.killReplica) this.injections.killReplica = await this.#injectKill();
    if (o.restartNats) this.injections.restartNats = await this.#injectNatsRestart();
    if (o.killNatsNode) this.injections.killNatsNode = await this.#injectNatsNodeKill();
  }

  #runningRuns() {
    return [...this.runs.entries()].filter(([, r]) => r.status === "running" && r.endAt === undefined);
  }

  /** Cancels K random running runs, each through a replica that does not own it; the ack is the answer. */
  async #injectCancel(k) {
    const pool = this.#runningRuns().filter(([, r]) => !r.c.aborting);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    const chosen = pool.slice(0, k);
    const ackMs = [];
    const serverMs = [];
    const outcomes = {};
    // The driver shares the machine's cores: its own event-loop delay is part of every ack it measures.
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    await Promise.all(
      chosen.map(async ([runId, r], i) => {
        await sleep(i * 5);
        const via = this.#alive().find((x) => x.id !== r.replicaId);
        if (!via) return;
        r.c.injected = "cancel";
        r.c.aborting = true;
        const t = performance.now();
        const res = await this.#cancel(runId, "bench cancel", via).catch((err) => ({
          status: 0,
          body: { error: String(err) },
        }));
        const ms = performance.now() - t;
        const key = res.status === 200 ? res.body.status : `http_${res.status}:${res.body.code ?? ""}`;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (res.status === 200) ackMs.push(ms);
        if (res.status === 200 && res.serverMs !== undefined) serverMs.push(res.serverMs);
        // The rest of the circuit cannot complete now.
        for (const id of r.c.runIds) {
          if (id !== runId && this.runs.get(id)?.endAt === undefined)
            void this.#cancel(id, "circuit aborted").catch(() => undefined);
        }
      }),
    );
    lag.disable();
    return {
      requested: k,
      sent: chosen.length,
      outcomes,
      ackMs: percentiles(ackMs),
      // Time inside the answering replica's cancel (its compare-and-set), from its Server-Timing header.
      serverMs: percentiles(serverMs),
      driverEventLoopDelayMs: {
        p50: round(lag.percentile(50) / 1e6, 2),
        p99: round(lag.percentile(99) / 1e6, 2),
      },
    };
  }

  /** Pauses the cluster through one replica: time until every replica's heartbeat shows it, then resumes. */
  async #injectPause() {
    const r = this.#alive()[0];
    const ids = this.#alive().map((x) => x.id);
    const before = new Map(ids.map((id) => [id, this.heartbeatPause.get(id) ?? null]));
    const visibleMs = {};
    const t = performance.now();
    const seen = new Promise((resolve) => {
      const check = () => {
        for (const id of ids) {
          const p = this.heartbeatPause.get(id);
          if (visibleMs[id] === undefined && p && p !== before.get(id)) visibleMs[id] = performance.now() - t;
        }
        if (ids.every((id) => visibleMs[id] !== undefined)) resolve();
      };
      this.pauseWaiters.push(check);
    });
    const paused = fetch(`${r.url}/v1/_pause`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ timeout_ms: 5_000 }),
    }).then(async (res) => ({ status: res.status, body: await res.json(), ms: performance.now() - t }));
    await Promise.race([seen, sleep(10_000)]);
    const p = await paused;
    this.pauseWaiters.length = 0;
    await sleep(500);
    const resumed = await fetch(`${r.url}/v1/_resume`, { method: "POST" });
    const logTail =
      p.status === 200
        ? undefined
        : r.output
            .join("")
            .split("\n")
            .filter((l) => /"level":(40|50)/.test(l))
            .slice(-3);
    return {
      logTail,
      visibleMs: Object.fromEntries(Object.entries(visibleMs).map(([k, v]) => [k, round(v, 2)])),
      maxVisibleMs: round(Math.max(...Object.values(visibleMs), 0), 2),
      allVisible: ids.every((id) => visibleMs[id] !== undefined),
      pauseAnswer: p.body,
      pauseAnswerMs: Math.round(p.ms),
      resumed: resumed.status === 200,
    };
  }

  /** kill -9 of the replica running the most runs: time until each of its runs is terminal. */
  async #injectKill() {
    const alive = this.#alive();
    if (alive.length < 2) return { skipped: "needs at least 2 replicas" };
    const running = this.#runningRuns();
    const count = (id) => running.filter(([, r]) => r.replicaId === id).length;
    const victim = alive.reduce((a, b) => (count(b.id) > count(a.id) ? b : a));
    const victims = running.filter(([, r]) => r.replicaId === victim.id).map(([id]) => id);
    const t = performance.now();
    const killAt = this.now();
    await victim.kill("SIGKILL");
    const deadline = t + 120_000;
    while (performance.now() < deadline && victims.some((id) => this.runs.get(id)?.endAt === undefined)) {
      await sleep(10);
    }
    const reasons = {};
    for (const id of victims) {
      const r = this.runs.get(id);
      const k = r?.endAt === undefined ? "not terminal" : `${r.status}/${r.stopReason}`;
      reasons[k] = (reasons[k] ?? 0) + 1;
    }
    const left = victims.filter((id) => this.runs.get(id)?.endAt === undefined).length;
    const ended = victims.map((id) => this.runs.get(id)?.endAt).filter((x) => x !== undefined);
    return {
      victim: victim.id,
      victimRuns: victims.length,
      victimTerminalAfterKillMs: percentiles(ended.map((x) => x - killAt)),
      killToAllTerminalMs: left === 0 ? Math.round(performance.now() - t) : null,
      notTerminal: left,
      victimOutcomes: reasons,
    };
  }

  async #injectNatsRestart() {
    const node = this.nats.nodes[0];
    const t = performance.now();
    await node.restart();
    return { downMs: Math.round(performance.now() - t) };
  }

  async #injectNatsNodeKill() {
    if (this.nats.nodes.length < 3) return { skipped: "needs --nats-cluster 3" };
    const node = this.nats.nodes.at(-1);
    await node.kill();
    return { killed: `n${this.nats.nodes.length}`, port: node.port };
  }

  // ------------------------------------------------------------------ after the run

  /** Every run record terminal, every quota slot and global slot free — waited for, bounded. */
  async #afterRun() {
    const t = performance.now();
    const nonTerminal = async () => {
      // times: agent → the queue times (started_at − created_at) and run times (ended_at − started_at) of its
      // runs, in ms; read on the same walk, the last walk's (all runs settled) is the one reported.
      const out = { queued: 0, running: 0, total: 0, unposted: 0, left: [], times: new Map() };
      const status = await this.runsKv.status();
      if (status.values === 0) return out;
      const w = await this.runsKv.watch({ key: keys.runnerRunsPrefix() });
      const timer = setTimeout(() => w.stop(), 60_000);
      try {
        for await (const e of w) {
          if (e.operation === "PUT") {
            out.total++;
            const v = e.json();
            // A run the runner admitted although the POST that asked for it got no answer (the driver
            // posted again): the driver never learnt its id.
            const known = this.runs.has(v.run_id);
            if (!known) out.unposted++;
            addRunTimes(out.times, v);
            const s = v.status;
            if (s === "queued" || s === "running") {
              out[s]++;
              if (out.left.length < 20) {
                out.left.push({
                  run_id: v.run_id,
                  agent: v.agent,
                  status: s,
                  accepted_by: v.accepted_by,
                  replica_id: v.replica_id,
                  created_at: v.created_at,
                  started_at: v.started_at,
                  posted: known,
                });
              }
            }
          }
          if (e.delta === 0) break;
        }
      } finally {
        clearTimeout(timer);
        w.stop();
      }
      return out;
    };
    const heldRuns = [];
    const quotaHeld = async () => {
      let n = 0;
      heldRuns.length = 0;
      // Not kv.keys(): its consumer can wait out an idle heartbeat (~30 s) when a set is purged meanwhile.
      const ks = await bucketKeys(this.quotasKv, keys.runnerQuotasPrefix());
      for (const k of ks) {
        const e = await this.quotasKv.get(k);
        if (e?.operation !== "PUT") continue;
        const ids = Object.keys(e.json().runs ?? {});
        n += ids.length;
        for (const id of ids.slice(0, 20 - heldRuns.length)) {
          const rec = await this.runsKv.get(keys.runnerRun(id));
          const v = rec?.operation === "PUT" ? rec.json() : undefined;
          heldRuns.push({
            run_id: id,
            user: e.json().user_id,
            status: v?.status ?? "no record",
            stop_reason: v?.stop_reason,
            agent: v?.agent,
            replica_id: v?.replica_id,
            posted: this.runs.has(id),
          });
        }
      }
      return n;
    };
    const admit = async () => {
      const jsm = await this.fabric.jsm();
      const { consumers, streams } = await import("@loominal/protocol");
      const info = await jsm.consumers.info(streams.runnerAdmit(), consumers.runnerAdmit());
      return { ackPending: info.num_ack_pending, pending: info.num_pending };
    };
    let runs;
    let held;
    let slots;
    const deadline = t + this.o.settleMs;
    for (;;) {
      try {
        runs = await nonTerminal();
        held = await quotaHeld();
        slots = await admit();
      } catch (err) {
        runs = { error: String(err) };
      }
      const clean = runs.running === 0 && runs.queued === 0 && held === 0 && slots?.ackPending === 0;
      if (clean || performance.now() > deadline) break;
      await sleep(1_000);
    }
    return {
      after: {
        settledInMs: Math.round(performance.now() - t),
        runRecords: runs.total,
        stuckRunning: runs.running,
        stuckQueued: runs.queued,
        quotaSlotsHeld: held,
        globalSlotsHeld: slots?.ackPending,
        admissionQueued: slots?.pending,
        unpostedRuns: runs.unposted,
        leftRuns: runs.left?.length > 0 ? runs.left : undefined,
        heldRuns: heldRuns.length > 0 ? heldRuns : undefined,
        error: runs.error,
      },
      runTimes: runs.times ? runTimesReport(runs.times) : undefined,
    };
  }
}

/** Adds one run record's queue time and run time (ms) to its agent's samples; a time not yet known is skipped. */
function addRunTimes(times, record) {
  let t = times.get(record.agent);
  if (!t) {
    t = { queueMs: [], runMs: [] };
    times.set(record.agent, t);
  }
  const created = Date.parse(record.created_at);
  const started = record.started_at ? Date.parse(record.started_at) : Number.NaN;
  const ended = record.ended_at ? Date.parse(record.ended_at) : Number.NaN;
  if (Number.isFinite(created) && Number.isFinite(started)) t.queueMs.push(started - created);
  if (Number.isFinite(started) && Number.isFinite(ended)) t.runMs.push(ended - started);
}

/**
 * Per agent and over all runs: percentiles of queue time (created_at → started_at: admission, the wait for a
 * slot and for a replica's pull) and run time (started_at → ended_at), in ms, from the run records' own
 * timestamps (each replica's clock; one machine here). A run cancelled while queued has neither.
 */
function runTimesReport(times) {
  const byAgent = {};
  const all = { queueMs: [], runMs: [] };
  for (const [agent, t] of [...times.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    byAgent[agent] = { queueMs: percentiles(t.queueMs), runMs: percentiles(t.runMs) };
    all.queueMs = all.queueMs.concat(t.queueMs);
    all.runMs = all.runMs.concat(t.runMs);
  }
  return { byAgent, all: { queueMs: percentiles(all.queueMs), runMs: percentiles(all.runMs) } };
}
