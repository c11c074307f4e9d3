import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, mkdirSync, openSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { type Logger, processAlive } from "@loominal/fabric";
import { LoominalError, type TargetRecord } from "@loominal/protocol";
import { z } from "zod";
import type { HealthResult, Mechanism, MechanismHandle, RemoteStatus, StartRequest } from "./types.js";

/** `local` target config: a command run without a shell on Weft's host. */
export const localConfigSchema = z.strictObject({
  command: z.string().min(1, "command must not be empty"),
  args: z.array(z.string()).default([]),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "env names are letters, digits and _"), z.string())
    .default({}),
  cwd: z.string().min(1).optional(),
});
export type LocalConfig = z.infer<typeof localConfigSchema>;

const handleSchema = z.object({ pid: z.int().positive(), hostname: z.string(), logFile: z.string() });

/** Finds an executable the way a shell would: a path as given, else each PATH directory. */
function resolveExecutable(
  command: string,
  cwd: string | undefined,
  path: string | undefined,
): string | undefined {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes("/")) {
    const p = isAbsolute(command) ? command : resolve(cwd ?? process.cwd(), command);
    return executable(p) ? p : undefined;
  }
  for (const dir of (path ?? "").split(delimiter))
    if (dir && executable(join(dir, command))) return join(dir, command);
  return undefined;
}

/**
 * Starts agents as child processes of Weft's host: no shell, its own process group (so it outlives a
 * Weft restart and stops as a whole), output appended to `<dataDir>/spinups/<spinUpId>.log`.
 */
export class LocalMechanism implements Mechanism {
  readonly name = "local" as const;
  #logDir: string;
  #logger: Logger;

  constructor(options: { dataDir: string; logger: Logger }) {
    this.#logDir = join(options.dataDir, "spinups");
    this.#logger = options.logger;
  }

  validateConfig(config: unknown): Record<string, unknown> {
    const r = localConfigSchema.safeParse(config);
    if (!r.success)
      throw new LoominalError(
        "invalid_input",
        `invalid local target config: ${r.error.issues.map((i) => `config.${i.path.join(".")}: ${i.message}`).join("; ")}`,
        { details: { field: `config.${r.error.issues[0]?.path.join(".") ?? ""}` } },
      );
    return r.data;
  }

  async start(request: StartRequest): Promise<MechanismHandle> {
    const config = localConfigSchema.parse(request.target.config);
    const env = { ...process.env, ...config.env, ...request.env };
    const executable = resolveExecutable(config.command, config.cwd, env.PATH);
    if (!executable)
      throw new LoominalError(
        "invalid_input",
        `command ${JSON.stringify(config.command)} is not an executable file here (nor on PATH)`,
      );
    mkdirSync(this.#logDir, { recursive: true });
    const logFile = join(this.#logDir, `${request.spinUpId}.log`);
    const fd = openSync(logFile, "a", 0o600);
    try {
      const child = spawn(executable, config.args, {
        cwd: config.cwd,
        env,
        detached: true,
        stdio: ["ignore", fd, fd],
      });
      await new Promise<void>((ok, fail) => {
        child.once("spawn", ok);
        child.once("error", fail);
      });
      child.unref();
      const pid = child.pid;
      if (pid === undefined) throw new LoominalError("internal", "the process started without a pid");
      this.#logger.info({ spinUpId: request.spinUpId, pid, logFile }, "started a local agent");
      return { pid, hostname: hostname(), logFile };
    } finally {
      closeSync(fd);
    }
  }

  async stop(handle: MechanismHandle, options: { graceMs: number }): Promise<void> {
    const h = handleSchema.safeParse(handle);
    if (!h.success || h.data.hostname !== hostname()) return;
    const { pid } = h.data;
    const signal = (sig: NodeJS.Signals) => {
      try {
        // The whole process group: the agent and whatever command it is running.
        process.kill(-pid, sig);
      } catch {
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
      }
    };
    if (!processAlive(pid)) return;
    signal("SIGTERM");
    const until = Date.now() + options.graceMs;
    while (Date.now() < until && processAlive(pid)) await new Promise((r) => setTimeout(r, 100));
    if (processAlive(pid)) signal("SIGKILL");
  }

  async status(handle: MechanismHandle): Promise<RemoteStatus> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return { state: "unknown", message: "not a local spin-up handle" };
    if (h.data.hostname !== hostname())
      return { state: "unknown", message: `pid ${h.data.pid} runs on ${h.data.hostname}, not here` };
    return processAlive(h.data.pid)
      ? { state: "running", message: `pid ${h.data.pid} is running` }
      : { state: "gone", message: `pid ${h.data.pid} exited (its output: ${h.data.logFile})` };
  }

  async test(target: TargetRecord): Promise<HealthResult> {
    const r = localConfigSchema.safeParse(target.config);
    if (!r.success) return { ok: false, message: `invalid config: ${r.error.issues[0]?.message ?? ""}` };
    const exe = resolveExecutable(r.data.command, r.data.cwd, { ...process.env, ...r.data.env }.PATH);
    return exe
      ? { ok: true, message: `${exe} is executable` }
      : { ok: false, message: `command ${r.data.command} not found` };
  }
}

/** Whether the local process of a handle is still running on this host (undefined: not this host's). */
export function localProcessAlive(handle: MechanismHandle | undefined): boolean | undefined {
  const h = handleSchema.safeParse(handle);
  if (!h.success || h.data.hostname !== hostname()) return undefined;
  return processAlive(h.data.pid);
}
