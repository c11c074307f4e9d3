import { Fabric } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll } from "vitest";
import { WorkQueue, type WorkSettings } from "./index.js";

/** The default work settings with some overridden. */
export function workSettings(overrides: Partial<WorkSettings> = {}): WorkSettings {
  return { ...warpConfigSchema.parse({}).work, ...overrides };
}

/** An offer of capability `typescript`. */
export const offer = (taskId: string, extra: Record<string, unknown> = {}) => ({
  taskId,
  description: `do ${taskId}`,
  capability: "typescript",
  ...extra,
});

export interface WorkAgentOptions {
  projectId: string;
  agentId?: string;
  userId?: string;
  /** Settings over the defaults and this fixture's short ack wait (1 s) and retry backoff (50 ms). */
  work?: Partial<WorkSettings>;
  prefetch?: number;
  agentType?: () => string | undefined;
}

/**
 * A real nats-server for a test file, and work queues on it (each agent on its own connection), all
 * closed after the file's tests.
 */
export function useWorkQueues() {
  let server: NatsServer | undefined;
  const fabrics: Fabric[] = [];
  const queues: WorkQueue[] = [];
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    for (const q of queues) await q.close();
    for (const f of fabrics) await f.close();
    await server?.stop();
  });
  const running = (): NatsServer => {
    if (!server) throw new Error("the nats-server of this test file is not running");
    return server;
  };
  return {
    get server(): NatsServer {
      return running();
    },
    /** A connection to the server, closed after the file's tests. */
    async connect(): Promise<Fabric> {
      const fabric = await Fabric.connect({ nats: { servers: [running().url] } });
      fabrics.push(fabric);
      return fabric;
    },
    /** A work queue as a new agent (random id and user unless given) on its own connection. */
    async agent(opts: WorkAgentOptions): Promise<{ queue: WorkQueue; fabric: Fabric }> {
      const fabric = await this.connect();
      const queue = new WorkQueue({
        fabric,
        projectId: opts.projectId,
        agentId: opts.agentId ?? randomId(),
        userId: opts.userId ?? randomId(),
        settings: workSettings({ ackWaitMs: 1_000, retryBackoffMs: 50, ...opts.work }),
        ...(opts.prefetch ? { prefetch: opts.prefetch } : {}),
        ...(opts.agentType ? { agentType: opts.agentType } : {}),
      });
      queues.push(queue);
      return { queue, fabric };
    },
  };
}
