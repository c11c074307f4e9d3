import { isAbsolute, resolve } from "node:path";
import {
  type Env,
  type EnvTable,
  Fabric,
  type Logger,
  type LoominalConfig,
  parseEnv,
  silentLogger,
} from "@loominal/fabric";
import { WorkQueue } from "@loominal/warp";
import { z } from "zod";
import { Shuttle, type WorkQueuePort } from "./orchestrator.js";
import { WorkDir } from "./paths.js";
import { OrchestrationStore } from "./store.js";

/** The Shuttle server's environment variables (parsed with the fabric's `parseEnv`). */
export const SHUTTLE_ENV = {
  LOOMINAL_SHUTTLE_WORK_DIR: {
    schema: z.string().optional(),
    description:
      "where orchestrations are kept (default shuttle.workDir of .loominal.json, else .loominal/shuttle; relative to the project directory)",
  },
  SHUTTLE_WORK_DIR: {
    schema: z.string().optional(),
    description: "deprecated name of LOOMINAL_SHUTTLE_WORK_DIR, read only when that is unset",
  },
} satisfies EnvTable;

/**
 * The Shuttle work dir: `LOOMINAL_SHUTTLE_WORK_DIR` (or its deprecated name `SHUTTLE_WORK_DIR`), else
 * `shuttle.workDir` of `.loominal.json` (default `.loominal/shuttle`); a relative path is taken from the
 * project directory.
 */
export function resolveWorkDir(config: LoominalConfig, env: Env = process.env, logger?: Logger): string {
  const vars = parseEnv(SHUTTLE_ENV, env);
  if (vars.LOOMINAL_SHUTTLE_WORK_DIR === undefined && vars.SHUTTLE_WORK_DIR !== undefined)
    logger?.warn("SHUTTLE_WORK_DIR is deprecated; set LOOMINAL_SHUTTLE_WORK_DIR instead");
  const raw =
    (vars.LOOMINAL_SHUTTLE_WORK_DIR ?? vars.SHUTTLE_WORK_DIR)?.trim() || config.file.shuttle.workDir;
  return isAbsolute(raw) ? raw : resolve(config.projectDir, raw);
}

export interface OpenShuttleOptions {
  config: LoominalConfig;
  logger?: Logger;
  env?: Env;
  /** An existing connection; when absent one is started in the background (NATS may be down). */
  fabric?: Fabric;
  reconcileIntervalMs?: number;
}

export interface OpenedShuttle {
  shuttle: Shuttle;
  fabric: Fabric;
  queue: WorkQueue;
  close(): Promise<void>;
}

/** Wires a Shuttle from configuration: work dir, NATS connection, Warp work queue, store. */
export async function openShuttle(options: OpenShuttleOptions): Promise<OpenedShuttle> {
  const { config } = options;
  const logger = options.logger ?? silentLogger();
  const ownsFabric = options.fabric === undefined;
  const fabric =
    options.fabric ??
    Fabric.start({ nats: config.nats, logger, name: `loominal-shuttle ${config.agentName}` });
  const workDir = await WorkDir.open(resolveWorkDir(config, options.env, logger));
  const queue = new WorkQueue({
    fabric,
    projectId: config.projectId,
    agentId: config.agentId,
    userId: config.userId,
    settings: config.file.warp.work,
    logger,
  });
  const store = new OrchestrationStore({ workDir, fabric, projectId: config.projectId, logger });
  const port: WorkQueuePort = queue;
  const shuttle = new Shuttle({
    fabric,
    projectId: config.projectId,
    agentId: config.agentId,
    store,
    queue: port,
    logger,
    ...(options.reconcileIntervalMs !== undefined
      ? { reconcileIntervalMs: options.reconcileIntervalMs }
      : {}),
  });
  await shuttle.start();
  return {
    shuttle,
    fabric,
    queue,
    async close() {
      await shuttle.close();
      await queue.close();
      if (ownsFabric) await fabric.close();
    },
  };
}
