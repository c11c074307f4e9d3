// The processes a circuit run stands up: NATS (one server or a 3-node cluster) and runner replicas (the
// built bin, one process each), with /proc sampling of their memory and CPU.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { NatsCluster, NatsServer } from "@loominal/testkit";

const BIN = fileURLToPath(new URL("../../apps/runner/dist/bin.js", import.meta.url));

/** Resident memory (bytes) and CPU time (ms) of a process, from /proc; undefined once it is gone. */
export function sampleProcess(pid) {
  if (pid === undefined) return undefined;
  try {
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks (100/s).
    const cpuMs = (Number(fields[11]) + Number(fields[12])) * 10;
    return { rssBytes: Number(rss ?? 0) * 1024, cpuMs };
  } catch {
    return undefined;
  }
}

/** Peak RSS and CPU used over a run, sampled every `everyMs` while it lasts. */
export class ProcessMeter {
  #pid;
  #timer;
  #first;
  #last;
  peakRssBytes = 0;
  /** [{at (ms since start), rssBytes, cpuMs}] for drift checks. */
  series = [];

  constructor(pid, everyMs = 1_000, t0 = performance.now()) {
    this.#pid = pid;
    this.t0 = t0;
    this.startedAt = performance.now();
    this.lastAt = this.startedAt;
    this.#first = sampleProcess(pid);
    this.#last = this.#first;
    if (this.#first) this.peakRssBytes = this.#first.rssBytes;
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  sample() {
    const s = sampleProcess(this.#pid);
    if (!s) return;
    this.#last = s;
    this.lastAt = performance.now();
    this.peakRssBytes = Math.max(this.peakRssBytes, s.rssBytes);
    this.series.push({ at: Math.round(performance.now() - this.t0), ...s });
    if (this.series.length > 20_000) this.series.splice(0, this.series.length - 20_000);
  }

  /** CPU used since the meter started (ms). */
  get cpuMs() {
    return this.#first && this.#last ? this.#last.cpuMs - this.#first.cpuMs : 0;
  }

  stop() {
    clearInterval(this.#timer);
  }
}

/** NATS for the run: one server, or a 3-node cluster (`size` 3) whose streams the runner replicates R3. */
export async function startNats(size) {
  if (size > 1) {
    const cluster = await NatsCluster.start(size);
    return {
      url: cluster.url,
      servers: cluster.servers,
      pids: () => cluster.nodes.map((n) => n.pid),
      nodes: cluster.nodes,
      stop: () => cluster.stop(),
    };
  }
  // With its monitoring port, so the run can count the messages each connection sent and received.
  const monitorPort = await freePort();
  const server = await NatsServer.start({ args: ["-m", String(monitorPort)] });
  return {
    url: server.url,
    servers: [server.url],
    pids: () => [server.pid],
    nodes: [server],
    monitorUrl: `http://127.0.0.1:${monitorPort}`,
    stop: () => server.stop(),
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Messages each client connection has sent to the server (`in_msgs`: publishes, requests, acks) and received
 * from it (`out_msgs`: replies, deliveries), by connection name, from the server's /connz; undefined when the
 * server has no monitoring port (a cluster) or does not answer.
 */
export async function connectionCounts(monitorUrl) {
  if (!monitorUrl) return undefined;
  try {
    const res = await fetch(`${monitorUrl}/connz?limit=1024`, { signal: AbortSignal.timeout(5_000) });
    const body = await res.json();
    const out = {};
    for (const c of body.connections ?? []) {
      const name = c.name || `cid-${c.cid}`;
      const o = out[name] ?? { inMsgs: 0, outMsgs: 0 };
      o.inMsgs += c.in_msgs;
      o.outMsgs += c.out_msgs;
      out[name] = o;
    }
    return out;
  } catch {
    return undefined;
  }
}

/** One runner replica: the built bin as its own process, ready when it prints its ready line. */
export function startReplica(env, { nodeArgs = [], bin = BIN } = {}) {
  const id = env.RUNNER_REPLICA_ID;
  const proc = spawn(process.execPath, [...nodeArgs, bin], {
    env: { PATH: process.env.PATH ?? "", LOOMINAL_LOG_LEVEL: "warn", RUNNER_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = [];
  const keep = (b) => {
    output.push(b.toString());
    if (output.length > 300) output.splice(0, output.length - 300);
  };
  proc.stderr.on("data", keep);
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`replica ${id} did not start within 30 s:\n${output.join("")}`));
    }, 30_000);
    const onData = (b) => {
      keep(b);
      buffer += b.toString();
      const line = buffer.split("\n").find((l) => l.startsWith('{"ready":true'));
      if (!line) return;
      clearTimeout(timer);
      buffer = "";
      proc.stdout.off("data", onData);
      proc.stdout.on("data", keep);
      const ready = JSON.parse(line);
      resolve({
        id: ready.replica_id,
        url: ready.url,
        proc,
        output,
        get alive() {
          return proc.exitCode === null && proc.signalCode === null;
        },
        kill(signal = "SIGKILL") {
          if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
          return new Promise((r) => {
            proc.once("exit", () => r());
            proc.kill(signal);
          });
        },
      });
    };
    proc.stdout.on("data", onData);
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`replica ${id} exited (${code ?? signal}) before it was ready:\n${output.join("")}`));
    });
  });
}
