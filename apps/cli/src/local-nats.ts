import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { processCommandLine } from "@loominal/fabric/host";
import { LoominalError } from "@loominal/protocol";
import type { probeNats } from "./probe.js";

/** The port `loominal up` prefers, which is also the NATS default. */
export const DEFAULT_NATS_PORT = 4222;

/** Where a project's local server keeps its state: everything under `<project>/.loominal/nats/`. */
export interface LocalNatsPaths {
  dir: string;
  storeDir: string;
  /** Written by nats-server itself (`--pid`). */
  pidFile: string;
  /** The server's stdout and stderr, appended across starts. */
  logFile: string;
}

export function localNatsPaths(projectDir: string): LocalNatsPaths {
  const dir = join(projectDir, ".loominal", "nats");
  return {
    dir,
    storeDir: join(dir, "store"),
    pidFile: join(dir, "nats-server.pid"),
    logFile: join(dir, "nats-server.log"),
  };
}

export type LocalNatsStatus =
  | { running: false; paths: LocalNatsPaths }
  | {
      running: true;
      paths: LocalNatsPaths;
      pid: number;
      url: string | undefined;
      reachable: boolean;
      version: string | undefined;
      jetstream: boolean;
      reason: string | undefined;
    };

export interface StartedServer {
  pid: number;
  url: string;
  version: string;
  /** False when a server for this project was already running and was left alone. */
  started: boolean;
}

export interface StartOptions {
  /** The nats-server binary. */
  bin: string;
  /** Tried first; a free port is picked when it is taken. */
  preferredPort: number;
  /** How long to wait for the server to accept connections with JetStream. */
  readyTimeoutMs?: number;
}

/**
 * The nats-server that `loominal up` runs for one project: JetStream on loopback, store, pid file and
 * log under `.loominal/nats/`. The server is detached so it outlives the command that started it;
 * the pid file is how later commands find it again.
 */

/**
 * probeNats, loaded on the first probe: reading the pid and ports files (`mcp-config`, `nats stop`)
 * needs no NATS client.
 */
async function probeLazily(...args: Parameters<typeof probeNats>): ReturnType<typeof probeNats> {
  return (await import("./probe.js")).probeNats(...args);
}
export class LocalNats {
  readonly paths: LocalNatsPaths;

  constructor(projectDir: string) {
    this.paths = localNatsPaths(projectDir);
  }

  /** The pid of this project's server if it is alive, else undefined (a stale pid file is ignored). */
  runningPid(): number | undefined {
    const pid = readPid(this.paths.pidFile);
    return pid !== undefined && this.#isOurServer(pid) ? pid : undefined;
  }

  /** The client URL the server with this pid announced in its ports file. */
  urlOf(pid: number): string | undefined {
    if (!existsSync(this.paths.dir)) return undefined;
    const file = readdirSync(this.paths.dir).find((f) => f.endsWith(`_${pid}.ports`));
    if (!file) return undefined;
    try {
      const ports = JSON.parse(readFileSync(join(this.paths.dir, file), "utf8")) as { nats?: unknown };
      const first = Array.isArray(ports.nats) ? ports.nats[0] : undefined;
      return typeof first === "string" ? first : undefined;
    } catch {
      // Being written right now; the caller asks again.
      return undefined;
    }
  }

  async status(): Promise<LocalNatsStatus> {
    const pid = this.runningPid();
    if (pid === undefined) return { running: false, paths: this.paths };
    const url = this.urlOf(pid);
    if (url === undefined) {
      return {
        running: true,
        paths: this.paths,
        pid,
        url,
        reachable: false,
        version: undefined,
        jetstream: false,
        reason: "the server has not written its ports file yet",
      };
    }
    const probe = await probeLazily({ servers: [url] });
    return probe.kind === "ready" || probe.kind === "no-jetstream"
      ? {
          running: true,
          paths: this.paths,
          pid,
          url,
          reachable: true,
          version: probe.version,
          jetstream: probe.jetstream,
          reason: undefined,
        }
      : {
          running: true,
          paths: this.paths,
          pid,
          url,
          reachable: false,
          version: undefined,
          jetstream: false,
          reason: probe.reason,
        };
  }

  /** Starts the server unless it already runs; resolves once it accepts connections with JetStream. */
  async start(options: StartOptions): Promise<StartedServer> {
    const existing = this.runningPid();
    if (existing !== undefined) {
      const url = this.urlOf(existing);
      const probe = url === undefined ? undefined : await probeLazily({ servers: [url] });
      if (url !== undefined && (probe?.kind === "ready" || probe?.kind === "no-jetstream")) {
        return { pid: existing, url, version: probe.version, started: false };
      }
      throw new LoominalError(
        "internal",
        `the local nats-server (pid ${existing}) is running but not answering${probe && probe.kind !== "ready" ? `: ${probe.reason}` : ""}. ` +
          `Stop it with 'loominal nats stop' and run 'loominal up' again; its log is ${this.paths.logFile}`,
      );
    }
    mkdirSync(this.paths.storeDir, { recursive: true });
    this.#removeStaleFiles();
    const port = (await portIsFree(options.preferredPort)) ? options.preferredPort : -1;
    try {
      return await this.#spawnAndWait(options, port);
    } catch (err) {
      // Someone took the port between the check and the bind: let the server pick one.
      if (err instanceof PortTakenError && port !== -1) return this.#spawnAndWait(options, -1);
      throw err;
    }
  }

  /** SIGTERM, wait, then SIGKILL if it would not go. Resolves with the pid stopped, if any. */
  async stop(options: { timeoutMs?: number } = {}): Promise<number | undefined> {
    const pid = this.runningPid();
    if (pid === undefined) {
      this.#removeStaleFiles();
      return undefined;
    }
    signal(pid, "SIGTERM");
    if (!(await this.#waitForExit(pid, options.timeoutMs ?? 10_000))) {
      signal(pid, "SIGKILL");
      if (!(await this.#waitForExit(pid, 5_000))) {
        throw new LoominalError("internal", `nats-server (pid ${pid}) did not exit after SIGKILL`);
      }
    }
    this.#removeStaleFiles();
    return pid;
  }

  async #spawnAndWait(options: StartOptions, port: number): Promise<StartedServer> {
    const args = [
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "-js",
      "-sd",
      this.paths.storeDir,
      "--pid",
      this.paths.pidFile,
      "--ports_file_dir",
      this.paths.dir,
    ];
    const logFd = openSync(this.paths.logFile, "a");
    const logStart = statSync(this.paths.logFile).size;
    writeSync(logFd, `\n--- ${new Date().toISOString()} ${options.bin} ${args.join(" ")}\n`);
    let exit: string | undefined;
    const child = spawn(options.bin, args, {
      cwd: this.paths.dir,
      detached: true,
      stdio: ["ignore", logFd, logFd],
    });
    closeSync(logFd);
    child.on("exit", (code, sig) => {
      exit = sig ? `signal ${sig}` : `exit code ${code}`;
    });
    child.on("error", (err) => {
      exit = err.message;
    });
    // The server must outlive this command.
    child.unref();
    const pid = child.pid;
    if (pid === undefined) {
      throw new LoominalError("internal", `could not start ${options.bin}: ${exit ?? "no process id"}`);
    }

    const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
    let lastProblem = "no ports file yet";
    while (Date.now() < deadline) {
      if (exit !== undefined) {
        const tail = this.#logSince(logStart);
        if (/address already in use/i.test(tail)) throw new PortTakenError(port);
        throw new LoominalError(
          "internal",
          `nats-server exited during startup (${exit}). Its output (${this.paths.logFile}):\n${tail}`,
        );
      }
      const url = this.urlOf(pid);
      if (url !== undefined) {
        const probe = await probeLazily({ servers: [url] });
        if (probe.kind === "ready") return { pid, url, version: probe.version, started: true };
        lastProblem = probe.reason;
      }
      await sleep(50);
    }
    signal(pid, "SIGTERM");
    throw new LoominalError(
      "timeout",
      `nats-server (pid ${pid}) did not accept connections within ${options.readyTimeoutMs ?? 15_000} ms ` +
        `(${lastProblem}); it was stopped. Its output (${this.paths.logFile}):\n${this.#logSince(logStart)}`,
    );
  }

  #removeStaleFiles(): void {
    rmSync(this.paths.pidFile, { force: true });
    if (!existsSync(this.paths.dir)) return;
    for (const f of readdirSync(this.paths.dir)) {
      if (f.endsWith(".ports")) rmSync(join(this.paths.dir, f), { force: true });
    }
  }

  /**
   * Whether pid is alive and is the nats-server using this project's store. Checking the command line
   * keeps a stale pid file from ever making us signal an unrelated process that reused the pid.
   */
  #isOurServer(pid: number): boolean {
    try {
      process.kill(pid, 0);
    } catch {
      // ESRCH: gone. EPERM: alive but another user's, so not a server this project started.
      return false;
    }
    // Without /proc (macOS) the liveness check is all there is.
    if (!existsSync("/proc/self/cmdline")) return true;
    // A zombie (exited, not yet reaped) has an empty command line.
    return processCommandLine(pid)?.includes(this.paths.storeDir) ?? false;
  }

  async #waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#isOurServer(pid)) return true;
      await sleep(50);
    }
    return !this.#isOurServer(pid);
  }

  #logSince(offset: number): string {
    try {
      const text = readFileSync(this.paths.logFile, "utf8").slice(offset);
      return text.split("\n").slice(-30).join("\n").trim();
    } catch {
      return "(no output)";
    }
  }
}

class PortTakenError extends Error {
  override name = "PortTakenError";
  constructor(port: number) {
    super(`port ${port} is already in use`);
  }
}

function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Whether a TCP listener could bind 127.0.0.1:port right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
