import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { hostBootId, processAlive, processCommandLine, processStartTime } from "@loominal/fabric/host";
import { LoominalError } from "@loominal/protocol";
import { z } from "zod";

/**
 * What `loominal up` started for a project, recorded in `<project>/.loominal/up.json` so that `down`
 * and `status` (and a later `up`) find exactly those processes again, and nothing else.
 */
export interface StackPaths {
  dir: string;
  stateFile: string;
  /** The admin token of the Weft that `up` runs (mode 0600); Weft reads it from its data dir. */
  tokenFile: string;
  weftLog: string;
  runnerLog: string;
}

export function stackPaths(projectDir: string): StackPaths {
  const dir = join(projectDir, ".loominal");
  return {
    dir,
    stateFile: join(dir, "up.json"),
    // The file a Weft with no WEFT_API_TOKENS reads (and would generate) in its data dir.
    tokenFile: join(dir, "weft-token"),
    weftLog: join(dir, "weft.log"),
    runnerLog: join(dir, "runner.log"),
  };
}

/** One process `up` started: enough to tell it from a process that later got the same pid. */
const processRecordSchema = z.object({
  pid: z.int().positive(),
  /** Linux: start time in clock ticks since boot (`/proc/<pid>/stat`). */
  startTime: z.string().optional(),
  /** Linux: the boot the process was started in; another boot means the process is gone. */
  bootId: z.string().optional(),
  /** An argument its command line must contain (the script or store path). */
  marker: z.string().min(1),
});
export type ProcessRecord = z.infer<typeof processRecordSchema>;

const serviceSchema = processRecordSchema.extend({ url: z.url(), log: z.string() });
export type ServiceRecord = z.infer<typeof serviceSchema>;

const stateSchema = z.object({
  version: z.literal(1),
  startedAt: z.string(),
  projectId: z.string(),
  /** `foreground`: the `up` process (below) stops everything on Ctrl-C. `detached`: `down` does. */
  mode: z.enum(["foreground", "detached"]),
  up: processRecordSchema.optional(),
  nats: z.object({
    url: z.string(),
    /** Present only when `up` started this project's local nats-server; `down` stops only then. */
    started: processRecordSchema.optional(),
  }),
  /** Absent while `up` is still starting it. */
  weft: serviceSchema.optional(),
  runner: serviceSchema.optional(),
  tokenFile: z.string(),
});
export type StackState = z.infer<typeof stateSchema>;

/** The recorded state, undefined when there is none; a damaged file is an error naming it. */
export function readStackState(paths: StackPaths): StackState | undefined {
  if (!existsSync(paths.stateFile)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.stateFile, "utf8"));
  } catch (cause) {
    throw damaged(paths, String(cause));
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) throw damaged(paths, z.prettifyError(parsed.error).replaceAll("\n", " "));
  return parsed.data;
}

function damaged(paths: StackPaths, why: string): LoominalError {
  return new LoominalError(
    "invalid_config",
    `${paths.stateFile} cannot be read (${why}). Stop what it named by hand if anything still runs, then delete the file.`,
  );
}

export function writeStackState(paths: StackPaths, state: StackState): void {
  mkdirSync(paths.dir, { recursive: true });
  const tmp = `${paths.stateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, paths.stateFile);
}

export function removeStackState(paths: StackPaths): void {
  rmSync(paths.stateFile, { force: true });
}

/** Reads the token file, or creates it (24 random bytes, hex, mode 0600) when it is missing or too short. */
export function ensureToken(paths: StackPaths): { token: string; created: boolean } {
  mkdirSync(paths.dir, { recursive: true });
  if (existsSync(paths.tokenFile)) {
    const existing = readFileSync(paths.tokenFile, "utf8").trim();
    if (existing.length >= 16) {
      chmodSync(paths.tokenFile, 0o600);
      return { token: existing, created: false };
    }
  }
  const token = randomBytes(24).toString("hex");
  writeFileSync(paths.tokenFile, `${token}\n`, { mode: 0o600 });
  chmodSync(paths.tokenFile, 0o600);
  return { token, created: true };
}

/** What identifies a live process now, for the record. */
export function recordProcess(pid: number, marker: string): ProcessRecord {
  const startTime = processStartTime(pid);
  const bootId = hostBootId();
  return {
    pid,
    marker,
    ...(startTime !== undefined ? { startTime } : {}),
    ...(bootId !== undefined ? { bootId } : {}),
  };
}

/**
 * Whether the recorded process still runs and is the one recorded: same boot, same start time, and its
 * command line still names the marker. A pid reused by an unrelated process, or a zombie, is not it.
 * Without /proc (macOS) only liveness can be checked.
 */
export function isRecordedProcess(record: ProcessRecord): boolean {
  if (!processAlive(record.pid)) return false;
  const cmdline = processCommandLine(record.pid);
  if (cmdline === undefined) return !existsSync("/proc/self/cmdline");
  if (!cmdline.includes(record.marker)) return false;
  if (record.bootId !== undefined && hostBootId() !== record.bootId) return false;
  if (record.startTime !== undefined && processStartTime(record.pid) !== record.startTime) return false;
  return true;
}

/**
 * Stops a recorded process: SIGTERM, then SIGKILL after `timeoutMs`. Does nothing to a pid that is no
 * longer the recorded process. Resolves with whether it had to signal anything.
 */
export async function stopRecorded(record: ProcessRecord, timeoutMs = 30_000): Promise<boolean> {
  if (!isRecordedProcess(record)) return false;
  signal(record.pid, "SIGTERM");
  if (await waitGone(record, timeoutMs)) return true;
  if (isRecordedProcess(record)) signal(record.pid, "SIGKILL");
  if (await waitGone(record, 5_000)) return true;
  throw new LoominalError("internal", `process ${record.pid} did not exit after SIGKILL`);
}

async function waitGone(record: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRecordedProcess(record)) return true;
    await sleep(50);
  }
  return !isRecordedProcess(record);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export interface ServiceSpec {
  name: string;
  /** The node script to run (also the marker its command line is recognised by). */
  script: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  /** The service's URL, read from one line of its output once it listens. */
  readyUrl: (line: Record<string, unknown>) => string | undefined;
  /** A path that answers 200 without a token once the service works. */
  healthPath: string;
  readyTimeoutMs: number;
  /** Keep this process alive while the service runs (a foreground `up`); otherwise let it exit. */
  keepRef: boolean;
  /** Polled while waiting: true abandons the start (the service is stopped, StartAbandoned thrown). */
  abandoned?: () => boolean;
}

/** Thrown by startService when `abandoned()` turned true (a Ctrl-C or `down` during startup). */
export class StartAbandoned extends Error {
  override name = "StartAbandoned";
}

export interface StartedService {
  record: ServiceRecord;
  /** Resolves with how the process ended (`exit code 1`, `signal SIGTERM`). */
  exited: Promise<string>;
}

/**
 * Starts a node service in its own process group (so a Ctrl-C in the terminal reaches only `up`, which
 * stops the services in order), output appended to its log file, and resolves once it printed the URL
 * it listens on and its health endpoint answers. A service that exits or does not answer in time is an
 * error quoting the end of its log.
 */
export async function startService(spec: ServiceSpec): Promise<StartedService> {
  mkdirSync(join(spec.logFile, ".."), { recursive: true });
  const logFd = openSync(spec.logFile, "a");
  const logStart = statSync(spec.logFile).size;
  writeSync(
    logFd,
    `\n--- ${new Date().toISOString()} ${spec.name}: node ${spec.script} ${spec.args.join(" ")}\n`,
  );
  const child = spawn(process.execPath, [spec.script, ...spec.args], {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ["ignore", logFd, logFd],
  });
  closeSync(logFd);
  let exit: string | undefined;
  const exited = new Promise<string>((resolve) => {
    child.on("exit", (code, sig) => {
      exit = sig ? `signal ${sig}` : `exit code ${code}`;
      resolve(exit);
    });
    child.on("error", (err) => {
      exit = err.message;
      resolve(exit);
    });
  });
  if (!spec.keepRef) child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    throw new LoominalError("internal", `could not start ${spec.name}: ${exit ?? "no process id"}`);
  }

  const fail = (why: string) => {
    signal(pid, "SIGTERM");
    return new LoominalError(
      "internal",
      `${spec.name} ${why}. Its output (${spec.logFile}):\n${logTail(spec.logFile, logStart)}`,
    );
  };
  const deadline = Date.now() + spec.readyTimeoutMs;
  let url: string | undefined;
  let problem = "it has not said where it listens yet";
  while (Date.now() < deadline) {
    if (exit !== undefined) throw fail(`exited during startup (${exit})`);
    if (spec.abandoned?.()) {
      await stopRecorded(recordProcess(pid, spec.script), 10_000);
      throw new StartAbandoned(`${spec.name} was stopped during startup`);
    }
    url ??= findReadyUrl(spec, logStart);
    if (url !== undefined) {
      const health = await checkHealth(`${url}${spec.healthPath}`);
      if (health.ok) {
        return { record: { ...recordProcess(pid, spec.script), url, log: spec.logFile }, exited };
      }
      problem = health.reason;
    }
    await sleep(100);
  }
  throw fail(`did not become healthy within ${spec.readyTimeoutMs} ms (${problem}); it was stopped`);
}

function findReadyUrl(spec: ServiceSpec, offset: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(spec.logFile, "utf8").slice(offset);
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const url = spec.readyUrl(JSON.parse(line) as Record<string, unknown>);
      if (url !== undefined) return url;
    } catch {
      // A line being written, or not JSON.
    }
  }
  return undefined;
}

export type Health = { ok: true; body: Record<string, unknown> } | { ok: false; reason: string };

/** GET a health endpoint: ok on a 200 with a JSON body. */
export async function checkHealth(url: string, timeoutMs = 3_000): Promise<Health> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return { ok: false, reason: `${url} answered ${res.status}` };
    return { ok: true, body: (await res.json()) as Record<string, unknown> };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    return { ok: false, reason: `${url}: ${cause}` };
  }
}

function logTail(file: string, offset: number): string {
  try {
    return readFileSync(file, "utf8").slice(offset).split("\n").slice(-30).join("\n").trim();
  } catch {
    return "(no output)";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
