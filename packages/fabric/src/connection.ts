import { readFileSync } from "node:fs";
import { inboxPrefixFor, LoominalError, nameTokenProblem } from "@loominal/protocol";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import type { NatsSettings } from "./config.js";
import { redactUrl } from "./config.js";
import {
  describeUnavailable,
  isAuthError,
  isPermissionViolation,
  isStorageFullError,
  isUnavailableError,
  NatsAuthError,
  NatsPermissionError,
  NatsUnavailableError,
  StorageFullError,
} from "./errors.js";
import { featuresOf, type ServerFeatures } from "./features.js";
import { type Logger, silentLogger } from "./logger.js";

export interface FabricOptions {
  nats: NatsSettings;
  logger?: Logger;
  /** Connection name shown by the server (`nats server report connections`). */
  name?: string;
  /** First reconnect delay; doubles per failed attempt up to `maxReconnectDelayMs`. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** JetStream API request timeout. */
  requestTimeoutMs?: number;
  /** JetStream domain (a leaf node's own JetStream); its API is `$JS.<domain>.API`. */
  jetstreamDomain?: string;
  /** JetStream API prefix, for an API imported from another account (default `$JS.API`). */
  jetstreamApiPrefix?: string;
}

export type FabricState = "connecting" | "connected" | "reconnecting" | "closed";

/** How long an interruption may last before `readyForCall` stops waiting for the connection to come back. */
export const OUTAGE_GRACE_MS = 1_500;

/**
 * One NATS connection with JetStream and KV handles. The only place Loominal opens a NATS connection.
 *
 * `Fabric.connect()` waits for the first connection and fails if the server is unreachable;
 * `Fabric.start()` returns at once and keeps trying in the background (MCP servers start without NATS).
 * Either way, once connected it reconnects forever with capped exponential backoff.
 */
export class Fabric {
  readonly url: string;
  readonly logger: Logger;
  #options: FabricOptions;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #kvm: Kvm | undefined;
  #state: FabricState = "connecting";
  #lastError = "not connected yet";
  #connected: Promise<NatsConnection>;
  #resolveConnected!: (nc: NatsConnection) => void;
  #rejectConnected!: (err: Error) => void;
  #reconnectAttempt = 0;
  /** When the connection was last lost (or the first attempt failed); undefined while connected. */
  #downSince: number | undefined;
  #stateListeners = new Set<(state: FabricState) => void>();

  private constructor(options: FabricOptions) {
    this.#options = options;
    this.url = options.nats.servers.map(redactUrl).join(",");
    this.logger = options.logger ?? silentLogger();
    this.#connected = new Promise((resolve, reject) => {
      this.#resolveConnected = resolve;
      this.#rejectConnected = reject;
    });
    // A rejection nobody awaited (closed before connecting) is not an error.
    this.#connected.catch(() => undefined);
  }

  /** Connects now; throws NatsUnavailableError if the server cannot be reached. */
  static async connect(options: FabricOptions): Promise<Fabric> {
    const fabric = new Fabric(options);
    try {
      fabric.#adopt(await connect(fabric.#connectionOptions()));
    } catch (err) {
      fabric.#state = "closed";
      if (isAuthError(err)) throw new NatsAuthError(fabric.url, describeError(err), { cause: err });
      throw new NatsUnavailableError(fabric.url, describeError(err), { cause: err });
    }
    return fabric;
  }

  /** Starts connecting in the background and returns at once. */
  static start(options: FabricOptions): Fabric {
    const fabric = new Fabric(options);
    void fabric.#connectLoop();
    return fabric;
  }

  get state(): FabricState {
    return this.#state;
  }

  /** True once connected and not currently reconnecting. */
  get isConnected(): boolean {
    return this.#state === "connected";
  }

  /** The live connection; throws NatsUnavailableError when there has never been one or it is closed. */
  get nc(): NatsConnection {
    if (!this.#nc || this.#state === "closed" || this.#state === "connecting") throw this.unavailable();
    return this.#nc;
  }

  get js(): JetStreamClient {
    const nc = this.nc;
    this.#js ??= jetstream(nc, this.#jetstreamOptions());
    return this.#js;
  }

  /** The JetStream API prefix every request of this connection uses (`$JS.API`, or a domain's or an import's). */
  get apiPrefix(): string {
    const o = this.#options;
    if (o.jetstreamDomain) return `$JS.${o.jetstreamDomain}.API`;
    return o.jetstreamApiPrefix ?? "$JS.API";
  }

  /** Prefix of this connection's reply subjects (`NATS_INBOX_PREFIX`, or `_INBOX_<user>`; `_INBOX` when undefined). */
  get inboxPrefix(): string | undefined {
    const s = this.#options.nats;
    return s.inboxPrefix ?? derivedInboxPrefix(s.user);
  }

  #jetstreamOptions(): { timeout: number; apiPrefix?: string; domain?: string } {
    const o = this.#options;
    return {
      timeout: o.requestTimeoutMs ?? 5_000,
      ...(o.jetstreamDomain ? { domain: o.jetstreamDomain } : {}),
      ...(!o.jetstreamDomain && o.jetstreamApiPrefix ? { apiPrefix: o.jetstreamApiPrefix } : {}),
    };
  }

  get kvm(): Kvm {
    this.#kvm ??= new Kvm(this.js);
    return this.#kvm;
  }

  async jsm(): Promise<JetStreamManager> {
    const nc = this.nc;
    this.#jsm ??= await jetstreamManager(nc, this.#jetstreamOptions());
    return this.#jsm;
  }

  /** What the connected server supports. */
  get features(): ServerFeatures {
    return featuresOf(this.nc.info?.version ?? "0.0.0");
  }

  /**
   * Resolves when connected; rejects with NatsUnavailableError after `timeoutMs` or when closed.
   * While reconnecting it waits for the connection to come back: a request sent while disconnected is
   * buffered by the client and its answer is lost across the reconnect, so it would only time out.
   */
  async ready(timeoutMs = 0): Promise<NatsConnection> {
    if (this.#nc && this.#state === "connected") return this.#nc;
    if (timeoutMs <= 0 || this.#state === "closed") throw this.unavailable();
    let timer: NodeJS.Timeout | undefined;
    let stopListening: (() => void) | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.unavailable()), timeoutMs);
    });
    const back = new Promise<NatsConnection>((resolve, reject) => {
      stopListening = this.onStateChange((state) => {
        if (state === "connected" && this.#nc) resolve(this.#nc);
        else if (state === "closed") reject(this.unavailable());
      });
    });
    try {
      return await Promise.race([this.#state === "connecting" ? this.#connected : back, timeout]);
    } finally {
      clearTimeout(timer);
      stopListening?.();
    }
  }

  /** How long NATS has been unreachable (ms), or undefined while connected or before a first attempt failed. */
  get downForMs(): number | undefined {
    return this.#downSince === undefined ? undefined : Date.now() - this.#downSince;
  }

  /**
   * `ready` for a caller that answers someone (an MCP tool): waits up to `timeoutMs` for a connection being
   * made or coming back from a short interruption, but fails at once with NatsUnavailableError while an
   * outage has lasted `graceMs` or more, instead of making every call wait out its timeout.
   */
  async readyForCall(timeoutMs: number, graceMs = OUTAGE_GRACE_MS): Promise<NatsConnection> {
    if (this.#nc && this.#state === "connected") return this.#nc;
    const down = this.downForMs;
    if (down !== undefined && down >= graceMs) throw this.unavailable();
    return this.ready(timeoutMs);
  }

  /** A NatsUnavailableError describing the current state. */
  unavailable(cause?: unknown): NatsUnavailableError {
    const reason = cause
      ? describeError(cause)
      : this.#state === "closed"
        ? "connection closed"
        : this.#lastError;
    return new NatsUnavailableError(this.url, reason, cause === undefined ? undefined : { cause });
  }

  /** Maps errors meaning "NATS is not there" to NatsUnavailableError; returns others unchanged. */
  mapError(err: unknown): unknown {
    if (err instanceof NatsUnavailableError || err instanceof LoominalError) return err;
    if (isPermissionViolation(err)) {
      const subject = /"([^"]+)"/.exec((err as Error).message)?.[1];
      return new NatsPermissionError(subject ? `a request on ${subject}` : "a request", { cause: err });
    }
    if (isUnavailableError(err)) return this.unavailable(err);
    if (isStorageFullError(err) && !(err instanceof StorageFullError))
      return new StorageFullError({ cause: err });
    return err;
  }

  onStateChange(listener: (state: FabricState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Drains subscriptions and closes. Safe to call twice. */
  async close(): Promise<void> {
    const nc = this.#nc;
    this.#setState("closed");
    this.#rejectConnected(this.unavailable());
    if (nc && !nc.isClosed()) {
      try {
        await nc.drain();
      } catch {
        await nc.close().catch(() => undefined);
      }
    }
  }

  #setState(state: FabricState): void {
    if (this.#state === state || this.#state === "closed") return;
    if (state === "connected") this.#downSince = undefined;
    else if (this.#state === "connected") this.#downSince = Date.now();
    this.#state = state;
    for (const l of this.#stateListeners) l(state);
  }

  async #connectLoop(): Promise<void> {
    let delay = this.#options.reconnectDelayMs ?? 250;
    const max = this.#options.maxReconnectDelayMs ?? 2_000;
    while (this.#state === "connecting") {
      try {
        const nc = await connect(this.#connectionOptions());
        if ((this.#state as FabricState) === "closed") {
          await nc.close();
          return;
        }
        this.#adopt(nc);
        return;
      } catch (err) {
        if (isAuthError(err)) {
          this.#lastError = `the server refused the credentials (${describeError(err)}); fix NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or NATS_URL`;
          this.logger.error(
            { url: this.url, err: describeError(err) },
            "NATS refused the credentials; retrying",
          );
        } else {
          this.#lastError = describeError(err);
          this.logger.warn({ url: this.url, err: this.#lastError }, "NATS not reachable yet; retrying");
        }
        this.#downSince ??= Date.now();
        await sleep(delay);
        delay = Math.min(max, delay * 2);
      }
    }
  }

  #adopt(nc: NatsConnection): void {
    this.#nc = nc;
    this.#setState("connected");
    this.#resolveConnected(nc);
    this.logger.info({ url: this.url, server: nc.info?.version }, "connected to NATS");
    void this.#watchStatus(nc);
    void nc.closed().then((err) => {
      if (err) this.#lastError = describeError(err);
      this.#setState("closed");
    });
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          this.#lastError = "disconnected; reconnecting";
          this.#setState("reconnecting");
          this.logger.warn({ url: this.url }, "disconnected from NATS; reconnecting");
          break;
        case "reconnect":
          this.#reconnectAttempt = 0;
          this.#setState("connected");
          this.logger.info({ url: this.url }, "reconnected to NATS");
          break;
        default:
          break;
      }
    }
  }

  #connectionOptions(): ConnectionOptions {
    const s = this.#options.nats;
    const base = this.#options.reconnectDelayMs ?? 250;
    const max = this.#options.maxReconnectDelayMs ?? 2_000;
    const opts: ConnectionOptions = {
      servers: s.servers,
      name: this.#options.name ?? s.name,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnect: true,
      reconnectDelayHandler: () => {
        const attempt = this.#reconnectAttempt++;
        const d = Math.min(max, base * 2 ** Math.min(attempt, 10));
        return d / 2 + Math.random() * (d / 2);
      },
      pingInterval: 10_000,
      timeout: 2_000,
    };
    const inboxPrefix = this.inboxPrefix;
    if (inboxPrefix !== undefined) opts.inboxPrefix = inboxPrefix;
    const auth: Authenticator[] = [];
    if (s.credsFile) auth.push(credsAuthenticator(readFileSync(s.credsFile)));
    if (s.user) auth.push(usernamePasswordAuthenticator(s.user, s.password ?? ""));
    if (s.token) auth.push(tokenAuthenticator(s.token));
    if (auth.length > 0) opts.authenticator = auth;
    if (s.tls) {
      opts.tls = {
        ...(s.tls.caFile ? { caFile: s.tls.caFile } : {}),
        ...(s.tls.certFile ? { certFile: s.tls.certFile } : {}),
        ...(s.tls.keyFile ? { keyFile: s.tls.keyFile } : {}),
      };
    }
    return opts;
  }
}

/** `_INBOX_<user>` for a user name that is a subject token (what `loominal nats-config` grants), else none. */
function derivedInboxPrefix(user: string | undefined): string | undefined {
  return user !== undefined && nameTokenProblem(user, "name") === undefined
    ? inboxPrefixFor(user)
    : undefined;
}

function describeError(err: unknown): string {
  return describeUnavailable(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
