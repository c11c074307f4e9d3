import { isAbsolute, resolve } from "node:path";
import { type Env, Fabric, type Logger, type LoominalConfig, silentLogger } from "@loominal/fabric";
import { WorkQueue } from "@loominal/warp";
import { Shuttle, type WorkQueuePort } from "./orchestrator.js";
import { WorkDir } from "./paths.js";
import { OrchestrationStore } from "./store.js";

/**
 * The Shuttle work dir: `SHUTTLE_WORK_DIR`, else `shuttle.workDir` of `.loominal.json` (default
 * `.loominal/shuttle`); a relative path is taken from the project directory.
 */
export function resolveWorkDir(config: LoominalConfig, env: Env = process.env): string {
  const raw = env.SHUTTLE_WORK_DIR?.trim() || config.file.shuttle.workDir;
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
  const workDir = await WorkDir.open(resolveWorkDir(config, options.env));
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
