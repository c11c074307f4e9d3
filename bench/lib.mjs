// Shared helpers for benchmarks: a private nats-server, percentiles, bounded loops, JSON output.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { NatsServer } from "@loominal/testkit";

/** Starts a private nats-server (JetStream, temp store) unless NATS_URL is set. */
export async function benchServer() {
  if (process.env.NATS_URL) return { url: process.env.NATS_URL, stop: async () => {} };
  const server = await NatsServer.start();
  return { url: server.url, pid: server.pid, stop: () => server.stop() };
}

/** CPU time (user + system, µs) a process has used so far, from /proc; undefined where unavailable. */
export function processCpuMicros(pid) {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // utime and stime, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

/** User and system CPU of a process in microseconds, and its write/read system calls so far (Linux). */
export function processUsage(pid) {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const io = Object.fromEntries(
      readFileSync(`/proc/${pid}/io`, "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split(": "))
        .map(([k, v]) => [k, Number(v)]),
    );
    return {
      userUs: Number(fields[11]) * 10_000,
      systemUs: Number(fields[12]) * 10_000,
      writes: io.syscw,
      reads: io.syscr,
    };
  } catch {
    return undefined;
  }
}

/** Per-operation difference of two processUsage readings. */
export function usagePer(before, after, ops) {
  if (!before || !after || ops === 0) return null;
  const per = (k) => Math.round(((after[k] - before[k]) / ops) * 100) / 100;
  return {
    userUs: per("userUs"),
    systemUs: per("systemUs"),
    writeSyscalls: per("writes"),
    readSyscalls: per("reads"),
  };
}

/** p50/p95/p99/max of a list of milliseconds, rounded to µs. */
export function percentiles(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  const r = (x) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? 0) };
}

/** Milliseconds since `t0` (from performance.now()). */
export function since(t0) {
  return performance.now() - t0;
}

/** Prints one benchmark result as a JSON line (the machine-readable output) and returns it. */
export function report(name, result) {
  const line = { bench: name, node: process.version, at: new Date().toISOString(), ...result };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  return line;
}

/** Runs `fn` until `count` iterations or `maxMs` elapse, whichever first, with `concurrency` in flight. */
export async function bounded({ count, maxMs, concurrency = 1 }, fn) {
  const deadline = performance.now() + maxMs;
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      await fn(i);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return done;
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 512 });

/**
 * One HTTP request with a JSON body and answer, over kept-alive connections (node:http: a load driver's own
 * CPU per request is a fraction of fetch's, so the driver takes less of the cores it shares with what it
 * measures). Resolves with the status, the headers and the parsed body ({} when it is not JSON); rejects on
 * a network error or after timeoutMs (an Error named "TimeoutError").
 */
export function httpJson(url, { method = "GET", body, headers = {}, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        agent: keepAlive,
        headers:
          data === undefined
            ? headers
            : { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          clearTimeout(timer);
          let json = {};
          try {
            json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            // Not JSON: the caller sees the status.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    const timer = setTimeout(() => {
      const err = new Error(`${method} ${url} got no answer within ${timeoutMs} ms`);
      err.name = "TimeoutError";
      req.destroy(err);
    }, timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(data);
  });
}
