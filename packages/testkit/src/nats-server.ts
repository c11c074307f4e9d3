import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NATS_SERVER_INSTALL_HINT, natsServerCandidates } from "@loominal/protocol";

/** Where the nats-server binary is: the first of protocol's `natsServerCandidates` that exists. */
export function natsServerBinary(): string {
  const candidates = natsServerCandidates(process.env);
  const found = process.env.NATS_SERVER_BIN?.trim() ? candidates[0] : candidates.find((p) => existsSync(p));
  if (found) return found;
  throw new Error(`${NATS_SERVER_INSTALL_HINT} (or set NATS_SERVER_BIN)`);
}

/** The installed server's version, e.g. "2.9.10". */
export function natsServerVersion(): string {
  const out = execFileSync(natsServerBinary(), ["--version"], { encoding: "utf8" });
  return /v?(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? "0.0.0";
}

/** A free TCP port on 127.0.0.1 (for cluster routes, which need fixed ports). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export interface NatsServerOptions {
  /** Enable JetStream (default true). */
  jetstream?: boolean;
  /** Store directory; a fresh temp directory when absent (removed on `stop({ removeStore: true })`). */
  storeDir?: string;
  /** Client port; a random free one when absent. */
  port?: number;
  /** Extra command-line arguments (cluster settings, auth, …). */
  args?: string[];
  /** A config file to pass with `-c`. */
  configFile?: string;
}

/**
 * Servers started by this process and still running. They are killed when this process exits, so a test
 * run or a benchmark that ends early (an uncaught error, a failed assertion in a hook) leaves no
 * nats-server behind.
 */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(proc: ChildProcess): void {
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const p of live) p.kill("SIGKILL");
    });
  }
}

/**
 * A real nats-server child process on loopback. Start one per test file (or per suite with a unique
 * projectId per test). `kill()` is SIGKILL; `restart()` brings it back on the same port and store.
 */
export class NatsServer {
  readonly storeDir: string;
  #options: NatsServerOptions;
  #proc: ChildProcess | undefined;
  #port = 0;
  #ownsStore: boolean;
  #portsDir: string;
  #log: string[] = [];

  private constructor(options: NatsServerOptions) {
    this.#options = options;
    this.#ownsStore = options.storeDir === undefined;
    this.storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "loom-nats-"));
    this.#portsDir = mkdtempSync(join(tmpdir(), "loom-ports-"));
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const s = new NatsServer(options);
    await s.#spawn(options.port ?? -1);
    return s;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** The last lines the server printed (for diagnosing a failed test). */
  get log(): string {
    return this.#log.join("");
  }

  async #spawn(port: number): Promise<void> {
    rmSync(this.#portsDir, { recursive: true, force: true });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(this.#portsDir, { recursive: true });
    const args = ["-a", "127.0.0.1", "-p", String(port), "--ports_file_dir", this.#portsDir];
    if (this.#options.configFile) args.unshift("-c", this.#options.configFile);
    if (this.#options.jetstream !== false) args.push("-js", "-sd", this.storeDir);
    args.push(...(this.#options.args ?? []));
    const proc = spawn(natsServerBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
    track(proc);
    this.#proc = proc;
    // A fresh log per process: readiness is read from it, so the last run's "Server is ready" must not
    // count, and a late line from the old process must not land in the new log.
    const log: string[] = [];
    this.#log = log;
    const keep = (b: Buffer) => {
      log.push(b.toString());
      if (log.length > 200) log.splice(0, log.length - 200);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    this.#port = await this.#waitForPort(proc);
  }

  async #waitForPort(proc: ChildProcess): Promise<number> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(
          `nats-server exited (${proc.exitCode ?? proc.signalCode}) before listening:\n${this.log}`,
        );
      }
      const file = readdirSync(this.#portsDir).find((f) => f.endsWith(".ports"));
      if (file) {
        try {
          const ports = JSON.parse(readFileSync(join(this.#portsDir, file), "utf8")) as { nats?: string[] };
          const url = ports.nats?.[0];
          const port = url ? Number(new URL(url).port) : Number.NaN;
          if (Number.isFinite(port) && port > 0 && (await this.#ready())) return port;
        } catch {
          // The file is being written; read it again.
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`nats-server did not start within 15 s:\n${this.log}`);
  }

  async #ready(): Promise<boolean> {
    // The ports file is written once the client listener is up; JetStream may log "ready" a bit later.
    return this.#options.jetstream === false || /Server is ready/.test(this.log);
  }

  /** SIGTERM and wait for exit. */
  async stop(options: { removeStore?: boolean } = {}): Promise<void> {
    await this.#signal("SIGTERM");
    if (options.removeStore ?? this.#ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
    rmSync(this.#portsDir, { recursive: true, force: true });
  }

  /** SIGKILL: the server gets no chance to flush or say goodbye. */
  async kill(): Promise<void> {
    await this.#signal("SIGKILL");
  }

  /**
   * SIGSTOP: the server freezes with its connections open, as under a long GC pause or a stalled VM.
   * Clients see no error, only silence. Always `resume()` (or kill) afterwards.
   */
  pause(): void {
    if (this.running) this.#proc?.kill("SIGSTOP");
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    if (this.running) this.#proc?.kill("SIGCONT");
  }

  /** Starts the server again on the same port and store (after stop or kill). */
  async restart(): Promise<void> {
    if (this.running) await this.#signal("SIGTERM");
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await this.#spawn(this.#port);
        return;
      } catch (err) {
        // The port can linger for a moment after the old process exits.
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    // A paused server would never act on SIGTERM.
    if (signal !== "SIGKILL") proc.kill("SIGCONT");
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
