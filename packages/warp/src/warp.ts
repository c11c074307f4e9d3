import type { Fabric, Logger, LoominalConfig } from "@loominal/fabric";
import { silentLogger } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { MessageAcks } from "./acks.js";
import { Channels } from "./channels.js";
import { Identity } from "./identity.js";
import { Inbox } from "./inbox.js";
import { FileLeases } from "./leases/file-leases.js";
import { Registry } from "./registry.js";
import { WorkQueue } from "./work/index.js";

/** How long a caller waits for NATS by default before getting "NATS unreachable". */
export const DEFAULT_READY_TIMEOUT_MS = 2_000;

export interface WarpOpenOptions {
  config: LoominalConfig;
  /** The connection; Warp never closes it (its owner does). */
  fabric: Fabric;
  logger?: Logger;
  /** Where per-host identity lock files live (default `<tmpdir>/loominal-agents`). */
  lockDir?: string;
  /**
   * Offers this process fetches ahead of its claims, per boundary+capability (default 1: none). Only a
   * process that claims in a loop (the worker CLI) should set more: prefetched offers are held away
   * from every other claimer until claimed or handed back.
   */
  workPrefetch?: number;
  /**
   * Take part in work maintenance (default true): the one process per project holding its lease moves
   * lapsed claims on, repairs stranded offers and drops finished items after the retention.
   */
  workMaintenance?: boolean;
}

/**
 * Warp, the library: one agent's identity, channels, registry entry, inbox and work queue on one Fabric
 * connection.
 * Opening it needs no NATS (an MCP server starts without one); `ready()` waits for the connection and
 * the identity claim, and every operation that touches NATS should be preceded by it.
 */
export class Warp {
  readonly config: LoominalConfig;
  readonly fabric: Fabric;
  readonly logger: Logger;
  readonly identity: Identity;
  readonly channels: Channels;
  readonly registry: Registry;
  readonly inbox: Inbox;
  /** Acknowledgements of direct messages sent with `ackRequired`. */
  readonly acks: MessageAcks;
  readonly work: WorkQueue;
  readonly leases: FileLeases;
  #claiming: Promise<void> | undefined;
  #restoredHandle = false;
  #closed = false;
  #unwatch: () => void;

  private constructor(options: WarpOpenOptions, identity: Identity, logger: Logger) {
    const { config, fabric } = options;
    const warp = config.file.warp;
    this.config = config;
    this.fabric = fabric;
    this.logger = logger;
    this.identity = identity;
    this.channels = new Channels({ fabric, identity, channels: warp.channels, logger });
    this.registry = new Registry({
      fabric,
      identity,
      heartbeatIntervalMs: warp.heartbeatIntervalMs,
      logger,
      // Readers show the agent busy while it holds claims or file leases, without it reporting anything.
      holdings: () => ({ claims: this.work.heldClaims.length, leases: this.leases.heldCount }),
    });
    this.acks = new MessageAcks({ fabric, identity, inboxMaxAgeMs: warp.inbox.maxAgeMs, logger });
    this.inbox = new Inbox({
      fabric,
      identity,
      registry: this.registry,
      settings: warp.inbox,
      logger,
      acks: this.acks,
    });
    this.work = new WorkQueue({
      fabric,
      projectId: identity.projectId,
      agentId: identity.agentId,
      userId: identity.userId,
      settings: warp.work,
      // Claims are checked against boundary policies as the type this agent registered with.
      agentType: () => this.registry.agentType,
      ...(options.workPrefetch !== undefined ? { prefetch: options.workPrefetch } : {}),
      logger,
    });
    this.leases = new FileLeases({
      fabric,
      projectDir: config.projectDir,
      holder: () => ({
        projectId: identity.projectId,
        agentId: identity.agentId,
        handle: identity.handle,
        holder: identity.instanceOf.claimHolder,
        hostname: identity.hostname,
      }),
      logger,
    });
    const unwatchClaims = this.work.onHeldChange(() => void this.registry.holdingsChanged());
    const unwatchLeases = this.leases.onHeldChange(() => void this.registry.holdingsChanged());
    const unwatchHeld = () => {
      unwatchClaims();
      unwatchLeases();
    };
    // Claim the identity as soon as NATS is there, not at the first tool call.
    const unwatchState = fabric.onStateChange((state) => {
      if (state === "connected") this.#establishInBackground();
    });
    this.#unwatch = () => {
      unwatchHeld();
      unwatchState();
    };
  }

  /** Opens Warp without waiting for NATS. Throws IdentityInUseError when no identity is free on this host. */
  static async open(options: WarpOpenOptions): Promise<Warp> {
    const logger = options.logger ?? silentLogger();
    const identity = Identity.acquire({
      config: options.config,
      logger,
      ...(options.lockDir !== undefined ? { lockDir: options.lockDir } : {}),
    });
    const warp = new Warp(options, identity, logger);
    warp.registry.startReaper();
    if (options.workMaintenance !== false) warp.work.startMaintenance();
    if (options.fabric.isConnected) warp.#establishInBackground();
    return warp;
  }

  get agentId(): string {
    return this.identity.agentId;
  }

  get projectId(): string {
    return this.identity.projectId;
  }

  /**
   * Resolves once NATS is connected and this process holds its identity. Throws NatsUnavailableError
   * after `timeoutMs` without a connection, IdentityInUseError when another live process holds the id.
   */
  async ready(timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
    if (this.#closed) throw new LoominalError("invalid_transition", "this Warp is closed; open a new one");
    // During a known outage this fails at once: a tool answers nats_unavailable without waiting.
    await this.fabric.readyForCall(timeoutMs);
    if (this.identity.claimed) return;
    this.#claiming ??= this.#establish().finally(() => {
      this.#claiming = undefined;
    });
    await this.#claiming;
  }

  /**
   * Runs `operation` once ready, reporting "NATS is not there" as NatsUnavailableError whatever layer
   * noticed it. What MCP tools (and other surfaces) call every library operation through.
   */
  async run<T>(operation: () => Promise<T>, timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<T> {
    await this.ready(timeoutMs);
    try {
      return await operation();
    } catch (err) {
      throw this.fabric.mapError(err);
    }
  }

  async #establish(): Promise<void> {
    await this.identity.claim(this.fabric);
    if (!this.#restoredHandle) {
      this.#restoredHandle = true;
      // A restarted agent keeps the handle it had chosen.
      const own = await this.registry.own().catch(() => undefined);
      if (own) this.identity.adoptHandle(own.handle);
    }
  }

  #establishInBackground(): void {
    if (this.#closed) return;
    this.ready(0).catch((err: unknown) =>
      this.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "could not establish identity yet",
      ),
    );
  }

  /** Sets this agent's handle, and updates its registry entry when registered. */
  async setHandle(handle: string): Promise<void> {
    this.identity.setHandle(handle);
    await this.registry.updateHandle();
  }

  /** Marks this agent offline (if registered), gives up its identity and stops timers. The Fabric stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    // Each part shuts down even when an earlier one fails (NATS gone, for example).
    const steps: Array<[string, () => Promise<unknown>]> = [
      // A clean exit hands its file leases back at once rather than when the identity claim expires.
      [
        "file leases",
        async () => {
          if (this.fabric.isConnected && this.identity.claimed) await this.leases.releaseOwn();
        },
      ],
      ["work queue", () => this.work.close()],
      ["registry", () => this.registry.close()],
      ["channels", async () => this.channels.close()],
      ["identity", () => this.identity.release()],
    ];
    for (const [part, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.logger.warn(
          { part, err: err instanceof Error ? err.message : String(err) },
          "error while closing",
        );
      }
    }
  }
}
