import {
  AgentInstance,
  type Fabric,
  IDENTITY_LEASE_TTL_MS,
  type Logger,
  type LoominalConfig,
  MAX_INSTANCES,
  processAlive,
} from "@loominal/fabric";
import { assertNameToken } from "@loominal/protocol";

export { IDENTITY_LEASE_TTL_MS, MAX_INSTANCES, processAlive };

export interface IdentityOptions {
  config: LoominalConfig;
  /** Where per-host lock files live (default `LOOMINAL_LOCK_DIR`, else `<tmpdir>/loominal-agents`). */
  lockDir?: string;
  logger: Logger;
}

/**
 * Who this Warp is: projectId, agentId, userId, handle.
 *
 * The identity itself (instance slots per directory, lock files, the NATS claim) is the fabric's
 * `AgentInstance`, shared with Pattern and Shuttle so the servers of one session are one agent; see there.
 * A claim held by another live process turns every tool call into IdentityInUseError rather than a shared
 * inbox. Warp adds the handle: the readable name other agents see.
 */
export class Identity {
  readonly instanceOf: AgentInstance;
  #handle: string;
  #handleChosen = false;

  private constructor(instance: AgentInstance) {
    this.instanceOf = instance;
    // "default", "default-2", … say nothing about the agent; a piece of its id at least tells them apart.
    this.#handle = /^default(-\d+)?$/.test(instance.agentName)
      ? `agent-${instance.agentId.slice(0, 8)}`
      : instance.agentName;
  }

  /**
   * Picks this process's identity on this host (no NATS needed). Throws IdentityInUseError when the
   * agentId was set explicitly (`LOOMINAL_AGENT_ID`) and a live process already uses it, or when every
   * instance slot is taken.
   */
  static acquire(options: IdentityOptions): Identity {
    return new Identity(AgentInstance.acquire({ ...options, role: "warp" }));
  }

  get projectId(): string {
    return this.instanceOf.projectId;
  }
  get userId(): string {
    return this.instanceOf.userId;
  }
  get hostname(): string {
    return this.instanceOf.hostname;
  }
  get agentId(): string {
    return this.instanceOf.agentId;
  }
  /** The agent name this instance runs as (`default`, `default-2`, …). */
  get agentName(): string {
    return this.instanceOf.agentName;
  }
  /** 1 for the first session of an agent name in a directory, 2 for the second, … */
  get instance(): number {
    return this.instanceOf.instance;
  }

  get handle(): string {
    return this.#handle;
  }

  /** Sets the readable name other agents see on this agent's messages. */
  setHandle(handle: string): void {
    this.#handle = assertNameToken(handle, "handle");
    this.#handleChosen = true;
  }

  /** Takes a handle remembered from an earlier run, unless one was chosen in this run already. */
  adoptHandle(handle: string): void {
    if (!this.#handleChosen) this.#handle = assertNameToken(handle, "handle");
  }

  /** Whether the NATS claim is currently held. */
  get claimed(): boolean {
    return this.instanceOf.claimed;
  }

  /** Claims the agentId in NATS (see `AgentInstance.claim`). */
  claim(fabric: Fabric): Promise<void> {
    return this.instanceOf.claim(fabric);
  }

  /** Gives the identity up: the NATS claim and the lock file. */
  release(): Promise<void> {
    return this.instanceOf.release();
  }
}
