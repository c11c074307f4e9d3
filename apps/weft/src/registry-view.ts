import { ensureBucket, type Fabric, jsonCodec, type Logger } from "@loominal/fabric";
import {
  type AgentPresence,
  type AgentRecord,
  type AgentStatus,
  agentRecordSchema,
  agentTypeAllowed,
  type BoundaryPolicy,
  effectiveAgentStatus,
} from "@loominal/protocol";
import { REGISTRY_BUCKET } from "@loominal/warp";
import { KvWatchInclude } from "@nats-io/kv";

const codec = jsonCodec(agentRecordSchema);

export interface AgentEntry extends Omit<AgentRecord, "status"> {
  /** What the agent is now: busy (holding claims or leases, or saying so), idle, or offline once heartbeats stopped. */
  status: AgentPresence;
  reportedStatus: AgentStatus;
}

export type RegistryChange =
  | { type: "put"; record: AgentRecord }
  | { type: "delete"; projectId: string; agentId: string };

/**
 * Weft's live view of the agent registry of every project (KV `loom-registry`, watched from its
 * latest values on). The registry in NATS stays the truth; this view only saves a read per decision,
 * and is rebuilt from NATS when the watch restarts.
 */
export class RegistryView {
  #fabric: Fabric;
  #logger: Logger;
  #records = new Map<string, AgentRecord>();
  #listeners = new Set<(change: RegistryChange) => void>();
  #stop: (() => void) | undefined;
  #done: Promise<void> | undefined;
  #ready: Promise<void> | undefined;

  constructor(fabric: Fabric, logger: Logger) {
    this.#fabric = fabric;
    this.#logger = logger;
  }

  /** Starts the watch; resolves once the current entries are loaded. */
  start(): Promise<void> {
    this.#ready ??= this.#watch();
    return this.#ready;
  }

  async #watch(): Promise<void> {
    const kv = await ensureBucket(this.#fabric, REGISTRY_BUCKET);
    const iter = await kv.watch({ key: ">", include: KvWatchInclude.LastValue });
    this.#stop = () => iter.stop();
    let resolveLoaded: () => void = () => undefined;
    const loaded = new Promise<void>((r) => {
      resolveLoaded = r;
    });
    // Nothing to load: the watch reports no initial values, so do not wait for them.
    if ((await kv.status()).values === 0) resolveLoaded();
    setTimeout(resolveLoaded, 3_000).unref();
    this.#done = (async () => {
      for await (const e of iter) {
        const dot = e.key.indexOf(".");
        const projectId = e.key.slice(0, dot);
        const agentId = e.key.slice(dot + 1);
        if (e.operation !== "PUT") {
          this.#records.delete(e.key);
          this.#emit({ type: "delete", projectId, agentId });
        } else {
          const r = codec.safeDecode(e.value, `${REGISTRY_BUCKET.name}/${e.key}`);
          if (r.ok && r.value.projectId === projectId && r.value.agentId === agentId) {
            this.#records.set(e.key, r.value);
            this.#emit({ type: "put", record: r.value });
          } else if (!r.ok)
            this.#logger.warn({ key: e.key, err: r.error.message }, "skipping an invalid registry entry");
        }
        if (e.delta === 0) resolveLoaded();
      }
    })();
    this.#done.catch((err: unknown) => this.#logger.warn({ err: String(err) }, "registry watch ended"));
    await loaded;
  }

  onChange(listener: (change: RegistryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(change: RegistryChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (err) {
        this.#logger.warn({ err: String(err) }, "registry listener failed");
      }
    }
  }

  /** Every agent of a project (offline ones too), as readers see them now. */
  agents(projectId: string, now = Date.now()): AgentEntry[] {
    const out: AgentEntry[] = [];
    for (const r of this.#records.values()) if (r.projectId === projectId) out.push(view(r, now));
    return out.sort((a, b) => (a.agentId < b.agentId ? -1 : 1));
  }

  get(projectId: string, agentId: string, now = Date.now()): AgentEntry | undefined {
    const r = this.#records.get(`${projectId}.${agentId}`);
    return r ? view(r, now) : undefined;
  }

  /** Projects with at least one registry entry. */
  projects(): string[] {
    return [...new Set([...this.#records.values()].map((r) => r.projectId))].sort();
  }

  /** Online agents that may take work of a boundary and capability (and agent type, when required). */
  eligible(
    projectId: string,
    capability: string,
    boundary: string,
    policy: BoundaryPolicy | undefined,
    requiredAgentType?: string,
  ): AgentEntry[] {
    return this.agents(projectId).filter(
      (a) =>
        a.status !== "offline" &&
        a.capabilities.includes(capability) &&
        (a.boundaries.length === 0 || a.boundaries.includes(boundary)) &&
        agentTypeAllowed(policy, a.agentType) &&
        (requiredAgentType === undefined || a.agentType === requiredAgentType),
    );
  }

  async stop(): Promise<void> {
    this.#stop?.();
    await this.#done?.catch(() => undefined);
  }
}

function view(r: AgentRecord, now: number): AgentEntry {
  return { ...r, status: effectiveAgentStatus(r, now), reportedStatus: r.status };
}
