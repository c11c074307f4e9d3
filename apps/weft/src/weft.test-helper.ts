import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, type Logger } from "@loominal/fabric";
import { NatsServer, tempDir } from "@loominal/testkit";
import { loadWeftConfig } from "./config.js";
import type { Mechanism } from "./mechanisms/types.js";
import { WeftMetrics } from "./metrics.js";
import { Weft } from "./weft.js";

const here = dirname(fileURLToPath(import.meta.url));
/** The built `weft` bin (tests run it as a process, as an operator would). */
export const WEFT_BIN = join(here, "..", "dist", "bin.js");
/** The built `loominal-agent` bin. */
export const AGENT_BIN = join(here, "..", "..", "agent", "dist", "bin.js");

export interface WeftProcess {
  proc: ChildProcess;
  url: string;
  port: number;
  /** Everything it logged so far. */
  output(): string;
  /** Exits with SIGTERM and waits. */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** A nats-server, a working directory and a `weft serve` on them: what most REST test files start with. */
export interface WeftStack {
  nats: NatsServer;
  weft: WeftProcess;
  dir: { path: string; cleanup: () => void };
}

/** Starts a nats-server and `weft serve` (in a new temporary directory named by `prefix`) with `env`. */
export async function startWeftStack(prefix: string, env: Record<string, string>): Promise<WeftStack> {
  const nats = await NatsServer.start();
  const dir = tempDir(prefix);
  const weft = await startWeftProcess({ cwd: dir.path, env: { NATS_URL: nats.url, ...env } });
  return { nats, weft, dir };
}

/** Stops what `startWeftStack` started (any part may be missing when the start failed). */
export async function stopWeftStack(stack: Partial<WeftStack>): Promise<void> {
  await stack.weft?.stop();
  await stack.nats?.stop({ removeStore: true });
  stack.dir?.cleanup();
}

/** Starts `weft serve` and resolves once it listens (WEFT_PORT=0 unless given). */
export async function startWeftProcess(options: {
  env: Record<string, string>;
  cwd: string;
}): Promise<WeftProcess> {
  const proc = spawn(process.execPath, [WEFT_BIN, "serve"], {
    cwd: options.cwd,
    env: { ...process.env, WEFT_PORT: "0", LOOMINAL_LOG_LEVEL: "debug", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) =>
    proc.once("exit", (code) => {
      live.delete(proc);
      r(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weft did not start within 30 s:\n${out}`)), 30_000);
    const check = () => {
      const m = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"weft listening"/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        proc.stdout?.off("data", check);
        resolve(m[1]);
      }
    };
    proc.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`weft exited with ${code} before listening:\n${out}`));
    });
  });
  const port = Number(new URL(url).port);
  return {
    proc,
    url,
    port,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      await exited;
    },
    async kill() {
      if (proc.exitCode !== null) return;
      proc.kill("SIGKILL");
      await exited;
    },
  };
}

/** Runs `weft serve` expecting it to fail at start; resolves with its exit code and output. */
export async function weftStartFailure(options: {
  env: Record<string, string>;
  cwd: string;
}): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, [WEFT_BIN, "serve"], {
    cwd: options.cwd,
    env: { ...process.env, WEFT_PORT: "0", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((r) => proc.once("exit", r));
  clearTimeout(timer);
  live.delete(proc);
  return { code, output: out };
}

/** A JSON HTTP client for one Weft with one token. */
/** A JSON client of a Weft; a request not answered within `timeoutMs` (default 60 s) fails, naming it. */
export function client(baseUrl: string, token?: string, options: { timeoutMs?: number } = {}) {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    // biome-ignore lint/suspicious/noExplicitAny: tests assert on the shape they expect
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json, headers: res.headers };
  };
}

export function readToken(path: string): string {
  return readFileSync(path, "utf8").trim();
}

/** The built `loominal-runner` bin. */
export const RUNNER_BIN = join(here, "..", "..", "runner", "dist", "bin.js");

/** A Runner replica as a child process (the built bin), for the dashboard's Runner view. */
export class RunnerReplica {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly replicaId: string;

  private constructor(proc: ChildProcess, url: string, replicaId: string) {
    this.proc = proc;
    this.url = url;
    this.replicaId = replicaId;
  }

  /** Starts it and resolves once it printed its ready line. */
  static start(env: Record<string, string>): Promise<RunnerReplica> {
    const proc = spawn(process.execPath, [RUNNER_BIN], {
      env: { PATH: process.env.PATH ?? "", LOOMINAL_LOG_LEVEL: "warn", RUNNER_PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(proc);
    let out = "";
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`runner did not start within 30 s:\n${out}`)), 30_000);
      proc.stderr?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      proc.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const line = out.split("\n").find((l) => l.startsWith('{"ready":true'));
        if (!line) return;
        clearTimeout(timer);
        const ready = JSON.parse(line) as { url: string; replica_id: string };
        resolve(new RunnerReplica(proc, ready.url, ready.replica_id));
      });
      proc.once("exit", (code) => {
        live.delete(proc);
        clearTimeout(timer);
        reject(new Error(`runner exited with ${code} before it was ready:\n${out}`));
      });
    });
  }

  /** Posts a run (no streaming) and resolves with its run id. */
  async run(body: { agent: string; prompt: string; user_id: string }): Promise<string> {
    const res = await fetch(`${this.url}/v1/runs`, {
      method: "POST",
      signal: AbortSignal.timeout(20_000),
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: false }),
    });
    const json = (await res.json()) as { run_id?: string };
    if (res.status !== 202 || !json.run_id) throw new Error(`the runner refused the run: ${res.status}`);
    return json.run_id;
  }

  /** SIGTERM and wait; a replica still running 20 s later is killed and the stop fails, saying so. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
    this.proc.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), 20_000);
      }),
    ]);
    clearTimeout(timer);
    if (!late) return;
    this.proc.kill("SIGKILL");
    await exited;
    throw new Error("the runner replica did not exit within 20 s of SIGTERM (killed)");
  }
}

/**
 * A Weft in the test's own process on `natsUrl`, with `defaults` (YAML of the config file's `defaults:`)
 * and the given mechanisms besides `local`; resolves once it leads.
 */
export async function startInProcessWeft(options: {
  natsUrl: string;
  dir: string;
  defaults: string;
  logger: Logger;
  mechanisms?: Mechanism[];
}): Promise<{ weft: Weft; fabric: Fabric; stop(): Promise<void> }> {
  const configFile = join(options.dir, "weft.yaml");
  writeFileSync(configFile, `defaults: ${options.defaults}\n`);
  const config = loadWeftConfig({
    env: { NATS_URL: options.natsUrl, WEFT_CONFIG: configFile, WEFT_DATA_DIR: join(options.dir, "data") },
    cwd: options.dir,
  });
  const fabric = await Fabric.connect({ nats: config.nats, logger: options.logger, name: "weft-in-test" });
  const weft = new Weft({
    config,
    fabric,
    logger: options.logger,
    metrics: new WeftMetrics(),
    mechanisms: options.mechanisms ?? [],
  });
  await weft.start();
  const deadline = Date.now() + 10_000;
  while (!weft.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (!weft.isLeader) throw new Error("the in-process Weft did not take the leader lease within 10 s");
  return {
    weft,
    fabric,
    async stop() {
      await weft.stop();
      await fabric.close();
    },
  };
}
