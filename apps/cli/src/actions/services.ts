import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { LoominalConfig } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { z } from "zod";
import { EXIT_NOT_STARTED } from "../commands/services.js";
import type { CliContext } from "../context.js";
import { LocalNats, portIsFree } from "../local-nats.js";
import { binPath, workspaceRoot } from "../mcp-config.js";
import { projectConfig } from "../project-config.js";
import {
  checkHealth,
  ensureToken,
  isRecordedProcess,
  type ProcessRecord,
  readStackState,
  recordProcess,
  removeStackState,
  type ServiceRecord,
  type StackPaths,
  type StackState,
  StartAbandoned,
  type StartedService,
  stackPaths,
  startService,
  stopRecorded,
  writeStackState,
} from "../stack.js";
import type { UpNats } from "./up.js";

export interface UpOptions {
  detach?: boolean;
  natsOnly?: boolean;
  weftPort?: string;
  runnerPort?: string;
  showToken?: boolean;
  timeout: string;
}

const DEFAULT_WEFT_PORT = 3000;
const DEFAULT_RUNNER_PORT = 3100;

/**
 * `up` past `--nats-only`: makes sure NATS answers (`ensureNats`), starts Weft and one Runner, records
 * each in `.loominal/up.json` as soon as it runs, prints where everything is, and then either returns
 * (`--detach`) or waits for Ctrl-C / SIGTERM and stops what it started. A Ctrl-C or `down` during startup
 * stops what was started so far. Resolves with the exit code.
 */
export async function upServices(
  ctx: CliContext,
  config: LoominalConfig,
  opts: UpOptions,
  ensureNats: () => Promise<UpNats>,
): Promise<number> {
  const paths = stackPaths(config.projectDir);
  refuseIfRunning(ctx, paths);
  const timeoutMs = positiveInt(opts.timeout, "--timeout");
  const weftPort = await chosenPort(ctx, opts.weftPort, "--weft-port", "WEFT_PORT", DEFAULT_WEFT_PORT);
  const runnerPort = await chosenPort(
    ctx,
    opts.runnerPort,
    "--runner-port",
    "RUNNER_PORT",
    DEFAULT_RUNNER_PORT,
  );

  // From here on a SIGINT or SIGTERM (Ctrl-C, `down`) means: stop what was started, then exit.
  let stopSignal: NodeJS.Signals | undefined;
  let wake: () => void = () => undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    stopSignal ??= sig;
    wake();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const nats = await ensureNats();
    const state: StackState = {
      version: 1,
      startedAt: new Date().toISOString(),
      projectId: config.projectId,
      mode: opts.detach ? "detached" : "foreground",
      up: recordProcess(process.pid, "up"),
      nats: {
        url: nats.url,
        ...(nats.started ? { started: recordProcess(nats.started.pid, nats.local.paths.storeDir) } : {}),
      },
      tokenFile: paths.tokenFile,
    };
    writeStackState(paths, state);
    const stopEarly = async (why: string) => {
      ctx.out(`${why}: stopping what was started…`);
      await stopState(ctx, config, paths, state);
      return 1;
    };
    if (stopSignal) return await stopEarly(stopSignal);

    const { token, created } = ensureToken(paths);
    const root = workspaceRoot();
    const env = childEnv(ctx, config, nats);
    const common = {
      cwd: config.projectDir,
      readyTimeoutMs: timeoutMs,
      keepRef: !opts.detach,
      abandoned: () => stopSignal !== undefined,
    };
    const weftEnv: NodeJS.ProcessEnv = { ...env, WEFT_PORT: String(weftPort), WEFT_DATA_DIR: paths.dir };
    // Weft reads the token from its data dir when no token is configured: never from the environment.
    delete weftEnv.WEFT_API_TOKENS;
    let weft: StartedService;
    let runner: StartedService;
    try {
      weft = await startService({
        ...common,
        name: "weft",
        script: binPath(join(root, "apps/weft"), "weft"),
        args: ["serve"],
        env: weftEnv,
        logFile: paths.weftLog,
        readyUrl: (line) =>
          line.msg === "weft listening" && typeof line.url === "string" ? line.url : undefined,
        healthPath: "/health",
      });
      state.weft = weft.record;
      writeStackState(paths, state);
      if (stopSignal) return await stopEarly(stopSignal);
      runner = await startService({
        ...common,
        name: "loominal-runner",
        script: binPath(join(root, "apps/runner"), "loominal-runner"),
        args: [],
        env: { ...env, RUNNER_PORT: String(runnerPort), RUNNER_AUTH_TOKEN: token },
        logFile: paths.runnerLog,
        readyUrl: (line) => (line.ready === true && typeof line.url === "string" ? line.url : undefined),
        healthPath: "/healthz",
      });
      state.runner = runner.record;
      writeStackState(paths, state);
      if (stopSignal) return await stopEarly(stopSignal);
    } catch (err) {
      if (err instanceof StartAbandoned) return await stopEarly(stopSignal ?? "stopped");
      await stopEarly("Startup failed");
      throw err;
    }

    if (opts.detach) {
      // Nothing of this process remains to be stopped: `down` stops the services directly.
      delete state.up;
      writeStackState(paths, state);
    }
    printUp(ctx, config, state, weft.record, runner.record, {
      created,
      token: opts.showToken ? token : undefined,
    });
    if (opts.detach) return 0;

    const why = await new Promise<{ code: number; message: string }>((resolve) => {
      wake = () => resolve({ code: 0, message: `${stopSignal}: stopping` });
      for (const s of [weft, runner]) {
        void s.exited.then((how) =>
          resolve({
            code: 1,
            message: `${s === weft ? "Weft" : "The Runner"} stopped (${how}); see ${s.record.log}. Stopping the rest`,
          }),
        );
      }
    });
    ctx.out("");
    ctx.out(`${why.message}…`);
    await stopState(ctx, config, paths, state);
    return why.code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** A second `up` while the first one's processes run would start a second Weft and Runner. */
function refuseIfRunning(ctx: CliContext, paths: StackPaths): void {
  const running = readStackState(paths);
  if (running === undefined) return;
  const alive = [running.up, running.weft, running.runner].filter(
    (r): r is ProcessRecord => r !== undefined && isRecordedProcess(r),
  );
  if (alive.length > 0) {
    throw new LoominalError(
      "conflict",
      `'up' already runs for this project (pids ${alive.map((r) => r.pid).join(", ")}, recorded in ` +
        `${paths.stateFile}). See it with '${ctx.commandName} status', stop it with '${ctx.commandName} down'.`,
    );
  }
  removeStackState(paths);
}

/** Stops, newest first, what a state names (and only that), then forgets the state. */
async function stopState(
  ctx: CliContext,
  config: LoominalConfig,
  paths: StackPaths,
  state: StackState,
): Promise<void> {
  if (state.weft !== undefined && isRecordedProcess(state.weft)) {
    try {
      const asked = await shutdownSpunUpAgents(state, state.weft);
      if (asked > 0) {
        ctx.out(
          `Asked ${asked} agent${asked === 1 ? "" : "s"} Weft started to shut down (each finishes its item first).`,
        );
      }
    } catch (err) {
      ctx.err(
        `loominal: could not ask the agents Weft started to shut down (${err instanceof Error ? err.message : String(err)}); ` +
          "they stop by themselves after their idle timeout.",
      );
    }
  }
  for (const [name, record] of [
    ["Runner", state.runner],
    ["Weft", state.weft],
  ] as const) {
    if (record === undefined) continue;
    ctx.out(
      (await stopRecorded(record))
        ? `Stopped ${name} (pid ${record.pid}).`
        : `${name} (pid ${record.pid}) was not running.`,
    );
  }
  if (state.nats.started) {
    ctx.out(
      (await stopNatsIfStarted(config, state.nats.started))
        ? `Stopped nats-server (pid ${state.nats.started.pid}).`
        : `nats-server (pid ${state.nats.started.pid}) was not running.`,
    );
  } else {
    ctx.out(`Left NATS at ${state.nats.url} running ('up' did not start it).`);
  }
  removeStackState(paths);
}

/** Stops the project's local nats-server if it still is the one `up` started. */
async function stopNatsIfStarted(
  config: LoominalConfig,
  record: ProcessRecord | undefined,
): Promise<boolean> {
  if (!record) return false;
  const local = new LocalNats(config.projectDir);
  if (!isRecordedProcess(record) || local.runningPid() !== record.pid) return false;
  // LocalNats.stop also removes its pid and ports files.
  return (await local.stop()) === record.pid;
}

/**
 * The environment of Weft and the Runner: the caller's, with NATS_URL pointing at the server `up`
 * settled on. A NATS_URL the user set is passed as it is (it may carry credentials, which are never
 * printed or recorded).
 */
function childEnv(ctx: CliContext, config: LoominalConfig, nats: UpNats): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...ctx.env };
  if (!nats.external || config.natsUrlSource === "default") env.NATS_URL = nats.url;
  else if (config.natsUrlSource === "file") env.NATS_URL = config.nats.servers.join(",");
  return env;
}

async function chosenPort(
  ctx: CliContext,
  flag: string | undefined,
  flagName: string,
  envName: string,
  preferred: number,
): Promise<number> {
  const fromEnv = ctx.env[envName]?.trim();
  const raw = flag ?? (fromEnv === "" ? undefined : fromEnv);
  if (raw === undefined) return (await portIsFree(preferred)) ? preferred : 0;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535) {
    throw new LoominalError(
      "invalid_input",
      `${flag !== undefined ? flagName : envName} must be a port number from 0 to 65535 (0 picks a free one), got "${raw}"`,
    );
  }
  return port;
}

function positiveInt(raw: string, name: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n <= 0) {
    throw new LoominalError(
      "invalid_input",
      `${name} must be a positive number of milliseconds, got "${raw}"`,
    );
  }
  return n;
}

function printUp(
  ctx: CliContext,
  config: LoominalConfig,
  state: StackState,
  weft: ServiceRecord,
  runner: ServiceRecord,
  token: { created: boolean; token: string | undefined },
): void {
  const rel = (p: string) => relative(config.projectDir, p) || p;
  const cmd = ctx.commandName;
  ctx.out("");
  ctx.out(`Loominal is up for project ${config.projectId}:`);
  ctx.out(
    `  NATS       ${state.nats.url}` +
      (state.nats.started
        ? ` (started by up, pid ${state.nats.started.pid})`
        : " (already running; left alone on stop)"),
  );
  ctx.out(`  Weft       ${weft.url}  (pid ${weft.pid}, log ${rel(weft.log)})`);
  ctx.out(`  Runner     ${runner.url}  (pid ${runner.pid}, log ${rel(runner.log)})`);
  ctx.out(`  Dashboard  ${weft.url}/ui`);
  ctx.out(
    `  API token  ${state.tokenFile} (mode 0600${token.created ? ", new" : ""}; Weft and the Runner accept it as ` +
      "'Authorization: Bearer <token>', and the dashboard's login page asks for it)",
  );
  if (token.token !== undefined) ctx.out(`  token:     ${token.token}`);
  ctx.out("");
  ctx.out("Point Loominal processes and the loominal commands at it:");
  ctx.out(`  export NATS_URL=${state.nats.url} WEFT_URL=${weft.url}`);
  ctx.out("Next: give Claude Code the MCP servers, then start it in this directory:");
  ctx.out(`  ${cmd} mcp-config --write`);
  ctx.out(`Check on everything with '${cmd} status'.`);
  ctx.out(
    state.mode === "detached"
      ? `Stop what up started with '${cmd} down'.`
      : `Ctrl-C stops what up started (or '${cmd} down' from another terminal).`,
  );
}

/** `down`: stops what `up` started (and only that, by the pids it recorded). */
export async function down(ctx: CliContext): Promise<void> {
  const config = projectConfig(ctx);
  const paths = stackPaths(config.projectDir);
  const state = readStackState(paths);
  if (state === undefined) {
    ctx.out(`Nothing started by 'up' is recorded for this project (${paths.stateFile}); nothing to stop.`);
    return;
  }
  let latest: StackState | undefined = state;
  if (state.up !== undefined && isRecordedProcess(state.up)) {
    // A running `up` stops its own services on SIGTERM; give it the time a Runner needs to drain.
    ctx.out(`Asking the running 'up' (pid ${state.up.pid}) to stop what it started…`);
    await stopRecorded(state.up, 60_000);
    // What it recorded last (it may have started more since), unless it cleaned up itself.
    latest = readStackState(paths);
    if (latest === undefined) {
      ctx.out(`'up' (pid ${state.up.pid}) stopped everything it started.`);
      return;
    }
  }
  await stopState(ctx, config, paths, latest);
}

/** `status`: NATS, Weft, the Runner, agents and work of what `up` started; sets the exit code. */
export async function status(
  ctx: CliContext,
  opts: { json?: boolean },
  setExit: (code: number) => void,
): Promise<void> {
  const config = projectConfig(ctx);
  const paths = stackPaths(config.projectDir);
  const state = readStackState(paths);
  if (state === undefined) {
    if (opts.json) ctx.out(JSON.stringify({ started: false, healthy: false }, null, 2));
    else ctx.out(`'up' has started nothing for this project. Start it with '${ctx.commandName} up'.`);
    setExit(EXIT_NOT_STARTED);
    return;
  }
  const report = await statusReport(config, state);
  if (opts.json) ctx.out(JSON.stringify(report, null, 2));
  else printStatus(ctx, report);
  setExit(report.healthy ? 0 : 1);
}

interface ComponentStatus {
  url: string;
  healthy: boolean;
  pid?: number;
  /** Whether `up` started it (and so `down` stops it). */
  startedByUp: boolean;
  problem?: string;
  detail?: string;
}

interface StatusReport {
  started: true;
  healthy: boolean;
  projectId: string;
  mode: StackState["mode"];
  nats: ComponentStatus;
  weft: ComponentStatus;
  runner: ComponentStatus;
  agents?: { online: number; busy: number; offline: number };
  work?: { queued: number; inFlight: number; dead: number };
  problem?: string;
}

async function statusReport(config: LoominalConfig, state: StackState): Promise<StatusReport> {
  // Loaded here: `status` with nothing started, and `down`, need no NATS client.
  const { probeNats } = await import("../probe.js");
  const natsProbe = await probeNats(state.nats.started ? { servers: [state.nats.url] } : config.nats);
  const nats: ComponentStatus = {
    url: state.nats.url,
    startedByUp: state.nats.started !== undefined,
    healthy: natsProbe.kind === "ready",
    ...(state.nats.started ? { pid: state.nats.started.pid } : {}),
    ...(natsProbe.kind === "ready"
      ? { detail: `nats-server ${natsProbe.version}, JetStream` }
      : { problem: natsProbe.reason }),
  };
  if (state.nats.started && !isRecordedProcess(state.nats.started)) {
    nats.healthy = false;
    nats.problem = `the nats-server 'up' started (pid ${state.nats.started.pid}) is gone`;
  }
  const service = async (
    record: StackState["weft"],
    path: string,
    detail: (b: Record<string, unknown>) => string,
  ) => {
    if (record === undefined) {
      return { url: "", startedByUp: true, healthy: false, problem: "'up' has not started it yet" };
    }
    const status: ComponentStatus = { url: record.url, pid: record.pid, startedByUp: true, healthy: false };
    if (!isRecordedProcess(record)) {
      status.problem = `process ${record.pid} is gone (its log: ${record.log})`;
      return status;
    }
    const health = await checkHealth(`${record.url}${path}`);
    if (health.ok) {
      status.healthy = true;
      status.detail = detail(health.body);
    } else status.problem = health.reason;
    return status;
  };
  const weft = await service(state.weft, "/health", (b) =>
    [`NATS ${String(b.nats)}`, b.leader === true ? "leader" : "not leader"].join(", "),
  );
  const runner = await service(state.runner, "/healthz", (b) => {
    const replicas = Array.isArray(b.replicas) ? b.replicas.length : 0;
    return `NATS ${String(b.nats)}, ${replicas} replica${replicas === 1 ? "" : "s"}`;
  });
  const report: StatusReport = {
    started: true,
    healthy: nats.healthy && weft.healthy && runner.healthy,
    projectId: state.projectId,
    mode: state.mode,
    nats,
    weft,
    runner,
  };
  if (weft.healthy && state.weft) {
    try {
      const stats = await weftStats(state.tokenFile, state.weft.url, state.projectId);
      report.agents = stats.agents;
      report.work = stats.work;
    } catch (err) {
      report.problem = err instanceof Error ? err.message : String(err);
      report.healthy = false;
    }
  }
  return report;
}

/** Weft's answers `up`, `status` and `down` read: only the fields they use, the rest passed over. */
const count = z.number().int().nonnegative().catch(0);
const statsSchema = z.object({
  agents: z.object({ online: count, busy: count, offline: count }),
  work: z.object({ queued: count, inFlight: count, dead: count }),
});
const agentsSchema = z.object({
  agents: z.array(z.object({ agentId: z.string(), spinUpId: z.string().nullish() })),
});
const shutdownSchema = z.object({ succeeded: count, failed: count });

/** One call to the REST API of the Weft `up` started, with the token from its file; the answer checked. */
async function weftCall<T>(
  weft: { url: string; tokenFile: string },
  method: "GET" | "POST",
  path: string,
  schema: z.ZodType<T>,
  body?: unknown,
): Promise<T> {
  let token: string;
  try {
    token = readFileSync(weft.tokenFile, "utf8").trim();
  } catch (cause) {
    throw new LoominalError("invalid_config", `cannot read the API token file ${weft.tokenFile}`, { cause });
  }
  const res = await fetch(`${weft.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) {
    throw new LoominalError(
      "internal",
      `Weft answered ${res.status} to ${method} ${path.split("?")[0]}` +
        (res.status === 401 ? ` (the token in ${weft.tokenFile} is not one Weft accepts)` : ""),
    );
  }
  const parsed = schema.safeParse(await res.json());
  if (!parsed.success) {
    throw new LoominalError(
      "internal",
      `Weft's answer to ${method} ${path.split("?")[0]} is not what this CLI expects ` +
        `(${z.prettifyError(parsed.error).replaceAll("\n", " ")}); is Weft from the same checkout?`,
    );
  }
  return parsed.data;
}

async function weftStats(
  tokenFile: string,
  weftUrl: string,
  projectId: string,
): Promise<z.infer<typeof statsSchema>> {
  return weftCall(
    { url: weftUrl, tokenFile },
    "GET",
    `/api/stats?projectId=${encodeURIComponent(projectId)}`,
    statsSchema,
  );
}

/**
 * Asks the agents the Weft started for this project (those registered with a spin-up id) to shut down
 * gracefully: each finishes the item in hand, goes offline and exits. Agents Weft did not start (Claude
 * Code sessions, workers run by hand) are left alone. Resolves with how many were asked.
 */
async function shutdownSpunUpAgents(state: StackState, weft: ServiceRecord): Promise<number> {
  const target = { url: weft.url, tokenFile: state.tokenFile };
  const q = `projectId=${encodeURIComponent(state.projectId)}`;
  const listed = await weftCall(target, "GET", `/api/agents?${q}&limit=100`, agentsSchema);
  const agentIds = listed.agents.filter((a) => a.spinUpId).map((a) => a.agentId);
  if (agentIds.length === 0) return 0;
  const answer = await weftCall(target, "POST", `/api/agents/shutdown-batch?${q}`, shutdownSchema, {
    agentIds,
    graceful: true,
    reason: "loominal down",
  });
  return answer.succeeded;
}

function printStatus(ctx: CliContext, r: StatusReport): void {
  const line = (name: string, c: ComponentStatus) => {
    const who = c.startedByUp
      ? `started by up${c.pid !== undefined ? `, pid ${c.pid}` : ""}`
      : "not started by up";
    const what = c.healthy ? (c.detail ?? "") : `DOWN: ${c.problem ?? "unknown"}`;
    ctx.out(`  ${name.padEnd(7)}${c.healthy ? "ok  " : "down"}  ${c.url}  (${who})  ${what}`.trimEnd());
  };
  ctx.out(`Project ${r.projectId} (${r.mode === "detached" ? "up --detach" : "up in a terminal"}):`);
  line("NATS", r.nats);
  line("Weft", r.weft);
  line("Runner", r.runner);
  if (r.agents) {
    ctx.out(`  agents   ${r.agents.online} online, ${r.agents.busy} busy, ${r.agents.offline} offline`);
  }
  if (r.work) {
    ctx.out(`  work     ${r.work.queued} queued, ${r.work.inFlight} in flight, ${r.work.dead} dead`);
  }
  if (r.problem) ctx.out(`  problem  ${r.problem}`);
  ctx.out(r.healthy ? "Everything 'up' runs is healthy." : "Something is down: see above.");
}
