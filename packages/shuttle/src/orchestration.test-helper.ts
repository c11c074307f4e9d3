import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, loadConfig, silentLogger } from "@loominal/fabric";
import { type OrchestrationRecord, orchestrationRecordSchema } from "@loominal/protocol";
import {
  connectInMemory,
  type TestClient,
  type ToolCallOutcome,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { WorkQueue } from "@loominal/warp";
import { createShuttleServer } from "./mcp/server.js";
import { type OpenedShuttle, openShuttle, resolveWorkDir } from "./open.js";
import { Shuttle, type WorkQueuePort } from "./orchestrator.js";
import { WorkDir } from "./paths.js";
import { OrchestrationStore } from "./store.js";

const here = dirname(fileURLToPath(import.meta.url));
export const WORKER_SCRIPT = join(here, "..", "test", "worker.mjs");
export const BIN = join(here, "..", "dist", "bin.js");
export const CRASHING_SHUTTLE_SCRIPT = join(here, "..", "test", "crashing-shuttle.mjs");

/** Ack wait of the test projects: short, so a killed worker's claim comes back quickly. */
export const TEST_ACK_WAIT_MS = 1_500;

export interface TestProject {
  dir: string;
  projectId: string;
  natsUrl: string;
  /** Outside the project dir, for worker logs. */
  scratch: string;
  cleanup(): void;
}

export function makeProject(natsUrl: string): TestProject {
  const project = tempDir("shuttle-project-");
  const scratch = tempDir("shuttle-scratch-");
  const projectId = uniqueProjectId();
  writeFileSync(
    join(project.path, ".loominal.json"),
    JSON.stringify({
      projectId,
      warp: { work: { ackWaitMs: TEST_ACK_WAIT_MS, maxAttempts: 3, retryBackoffMs: 100 } },
    }),
  );
  return {
    dir: project.path,
    projectId,
    natsUrl,
    scratch: scratch.path,
    cleanup() {
      project.cleanup();
      scratch.cleanup();
    },
  };
}

export interface ShuttleUnderTest {
  client: TestClient;
  opened: OpenedShuttle;
  close(): Promise<void>;
}

/** A Shuttle MCP server in this process, reached through the MCP client over in-memory transport. */
export async function startShuttle(
  project: TestProject,
  natsUrl = project.natsUrl,
  options: { sdk?: "v1" | "v2"; reconcileIntervalMs?: number } = {},
): Promise<ShuttleUnderTest> {
  const config = loadConfig({
    cwd: project.dir,
    env: { NATS_URL: natsUrl, LOOMINAL_AGENT_NAME: "parent" },
  });
  const opened = await openShuttle({
    config,
    env: {},
    reconcileIntervalMs: options.reconcileIntervalMs ?? 1_000,
  });
  const client = await connectInMemory(createShuttleServer({ shuttle: opened.shuttle }), {
    sdk: options.sdk ?? "v2",
  });
  return {
    client,
    opened,
    async close() {
      await client.close();
      await opened.close();
    },
  };
}

export interface WorkerOptions {
  name: string;
  capabilities: string[];
  hangOn?: string;
  failOn?: string;
  skipOutputOn?: string;
  extra?: Record<string, string[]>;
  linkOutput?: Record<string, string>;
  /** How far this worker's clock is off, in ms (negative: behind). */
  clockSkewMs?: number;
}

export interface WorkerProcess {
  proc: ChildProcess;
  name: string;
  stop(): Promise<void>;
}

/** Starts a worker process (test/worker.mjs) for the project. */
export function startWorker(project: TestProject, options: WorkerOptions): WorkerProcess {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    LOOMINAL_PROJECT_DIR: project.dir,
    NATS_URL: project.natsUrl,
    LOOMINAL_AGENT_NAME: options.name,
    WORKER_CAPABILITIES: options.capabilities.join(","),
    WORKER_LOG: workerLogPath(project),
    LOOMINAL_LOG_LEVEL: "silent",
  };
  if (options.hangOn) env.WORKER_HANG_ON = options.hangOn;
  if (options.failOn) env.WORKER_FAIL_ON = options.failOn;
  if (options.skipOutputOn) env.WORKER_SKIP_OUTPUT_ON = options.skipOutputOn;
  if (options.extra) env.WORKER_EXTRA = JSON.stringify(options.extra);
  if (options.linkOutput) env.WORKER_LINK_OUTPUT = JSON.stringify(options.linkOutput);
  if (options.clockSkewMs) env.WORKER_CLOCK_SKEW_MS = String(options.clockSkewMs);
  const proc = spawn(process.execPath, [WORKER_SCRIPT], { env, stdio: ["ignore", "ignore", "inherit"] });
  return {
    proc,
    name: options.name,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function workerLogPath(project: TestProject): string {
  return join(project.scratch, "workers.jsonl");
}

export interface WorkerLogEntry {
  worker: string;
  pid: number;
  event: string;
  subtaskId?: string;
  workId?: string;
  attempt?: number;
  depsPresent?: boolean;
}

export function workerLog(project: TestProject): WorkerLogEntry[] {
  const path = workerLogPath(project);
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as WorkerLogEntry);
}

/** Calls a tool and fails the test with the tool's own message when it returns an error. */
export async function callOk(
  client: TestClient,
  name: string,
  args: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const out: ToolCallOutcome = await client.call(name, args);
  if (out.isError || !out.structured) throw new Error(`${name} failed: ${out.text}`);
  return out.structured;
}

export function recordOf(structured: Record<string, unknown>): OrchestrationRecord {
  return orchestrationRecordSchema.parse(structured.orchestration);
}

/** Every file under `dir`, relative to it. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** A work queue client for inspecting the ledger (and acting as a worker) from the test. */
export async function ledgerReader(
  project: TestProject,
): Promise<{ queue: WorkQueue; fabric: Fabric; close(): Promise<void> }> {
  const config = loadConfig({
    cwd: project.dir,
    env: { NATS_URL: project.natsUrl, LOOMINAL_AGENT_NAME: "inspector" },
  });
  const fabric = await Fabric.connect({ nats: config.nats });
  const queue = new WorkQueue({
    fabric,
    projectId: config.projectId,
    agentId: config.agentId,
    userId: config.userId,
    settings: config.file.warp.work,
  });
  return {
    queue,
    fabric,
    async close() {
      await queue.close();
      await fabric.close();
    },
  };
}

export interface LibraryShuttle {
  shuttle: Shuttle;
  queue: WorkQueue;
  close(): Promise<void>;
}

/**
 * A Shuttle library instance on the real Warp queue of the project, optionally seen through `wrap` (to
 * hold an offer at a chosen moment). No MCP server.
 */
export async function startLibraryShuttle(
  project: TestProject,
  wrap?: (queue: WorkQueue) => WorkQueuePort,
): Promise<LibraryShuttle> {
  const config = loadConfig({
    cwd: project.dir,
    env: { NATS_URL: project.natsUrl, LOOMINAL_AGENT_NAME: "parent" },
  });
  const fabric = await Fabric.connect({ nats: config.nats });
  const queue = new WorkQueue({
    fabric,
    projectId: config.projectId,
    agentId: config.agentId,
    userId: config.userId,
    settings: config.file.warp.work,
  });
  const workDir = await WorkDir.open(resolveWorkDir(config, {}));
  const store = new OrchestrationStore({
    workDir,
    fabric,
    projectId: config.projectId,
    logger: silentLogger(),
  });
  const shuttle = new Shuttle({
    fabric,
    projectId: config.projectId,
    agentId: config.agentId,
    store,
    queue: wrap ? wrap(queue) : queue,
    reconcileIntervalMs: 1_000,
  });
  await shuttle.start();
  return {
    shuttle,
    queue,
    async close() {
      await shuttle.close();
      await queue.close();
      await fabric.close();
    },
  };
}
