import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { encodeJson, type Fabric, type Logger } from "@loominal/fabric";
import {
  type AgentControlReply,
  agentControlRequestSchema,
  type ClaimedWork,
  subjects,
} from "@loominal/protocol";
import type { Warp } from "@loominal/warp";
import type { Subscription } from "@nats-io/transport-node";
import type { AgentOptions } from "./options.js";

/** The exit code a command uses to say "failed, but try again" (EX_TEMPFAIL). */
export const RETRYABLE_EXIT_CODE = 75;
/** How long one claim waits for an item before the next boundary/capability pair is tried. */
const CLAIM_WAIT_SINGLE_MS = 5_000;
const CLAIM_WAIT_MANY_MS = 500;

interface Running {
  item: ClaimedWork;
  child: ChildProcess | undefined;
  /** Set when the item was handed back on a shutdown that did not wait. */
  abandoned: boolean;
}

export type StopReason = "idle" | "shutdown-request" | "signal";

/**
 * The worker: registered through Warp, it claims work of its capabilities and boundaries, runs the
 * command once per item, extends the claim while the command runs, and completes or fails the item
 * with the command's outcome. It answers ping and shutdown on its control subject and stops on its
 * own after its idle timeout.
 */
export class Worker {
  readonly options: AgentOptions;
  #warp: Warp;
  #fabric: Fabric;
  #logger: Logger;
  #running = new Map<string, Running>();
  #stopping = false;
  #stopReason: StopReason | undefined;
  #graceful = true;
  #lastActivity = Date.now();
  #control: Subscription | undefined;
  #loops: Promise<void>[] = [];
  #done: Promise<StopReason>;
  #resolveDone: (reason: StopReason) => void = () => undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #pairIndex = 0;
  readonly completed: string[] = [];

  constructor(options: AgentOptions, warp: Warp, fabric: Fabric, logger: Logger) {
    this.options = options;
    this.#warp = warp;
    this.#fabric = fabric;
    this.#logger = logger;
    this.#done = new Promise((r) => {
      this.#resolveDone = r;
    });
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /** Registers, answers control requests and starts the claim loops. Resolves when it has stopped. */
  async run(): Promise<StopReason> {
    const o = this.options;
    await this.#warp.ready(30_000);
    await this.#warp.registry.register({
      agentType: o.agentType,
      capabilities: o.capabilities,
      boundaries: o.boundaries,
      maxConcurrentTasks: o.concurrency,
      ...(o.spinUpId !== undefined ? { spinUpId: o.spinUpId } : {}),
      ...(o.targetId !== undefined ? { targetId: o.targetId } : {}),
    });
    this.#listenForControl();
    this.#logger.info(
      {
        agentId: this.#warp.agentId,
        projectId: this.#warp.projectId,
        agentType: o.agentType,
        capabilities: o.capabilities,
        boundaries: o.boundaries,
        spinUpId: o.spinUpId ?? null,
      },
      "agent registered; claiming work",
    );
    if (o.idleTimeoutMs > 0) {
      this.#idleTimer = setInterval(
        () => {
          if (this.#running.size === 0 && Date.now() - this.#lastActivity >= o.idleTimeoutMs)
            this.stop("idle", true);
        },
        Math.min(1_000, Math.max(100, Math.floor(o.idleTimeoutMs / 4))),
      );
    }
    for (let i = 0; i < o.concurrency; i++) this.#loops.push(this.#claimLoop());
    const reason = await this.#done;
    await this.#shutdown();
    return reason;
  }

  /** Stops claiming; `graceful` finishes the items in hand, otherwise they are handed back at once. */
  stop(reason: StopReason, graceful: boolean): void {
    if (this.#stopping) {
      if (!graceful && this.#graceful) {
        this.#graceful = false;
        void this.#abandonAll();
      }
      return;
    }
    this.#stopping = true;
    this.#stopReason = reason;
    this.#graceful = graceful;
    this.#logger.info({ reason, graceful, inFlight: this.#running.size }, "stopping");
    if (!graceful) void this.#abandonAll();
    this.#resolveDone(reason);
  }

  #listenForControl(): void {
    const subject = subjects.agentControl(this.#warp.projectId, this.#warp.agentId);
    this.#control = this.#fabric.nc.subscribe(subject);
    void (async () => {
      for await (const m of this.#control as Subscription) {
        let reply: AgentControlReply;
        const parsed = agentControlRequestSchema.safeParse(
          (() => {
            try {
              return m.json();
            } catch {
              return undefined;
            }
          })(),
        );
        if (!parsed.success) {
          reply = {
            ok: false,
            agentId: this.#warp.agentId,
            op: "ping",
            inFlight: this.#running.size,
            message: "a control request is {op: ping|shutdown, graceful?, reason?}",
          };
        } else if (parsed.data.op === "ping") {
          reply = { ok: true, agentId: this.#warp.agentId, op: "ping", inFlight: this.#running.size };
        } else {
          const graceful = parsed.data.graceful ?? true;
          reply = {
            ok: true,
            agentId: this.#warp.agentId,
            op: "shutdown",
            inFlight: this.#running.size,
            message:
              graceful && this.#running.size > 0
                ? `finishing ${this.#running.size} item(s), then exiting`
                : "exiting",
          };
          this.#logger.info(
            { reason: parsed.data.reason ?? null, graceful },
            "shutdown requested on the control subject",
          );
          this.stop("shutdown-request", graceful);
        }
        m.respond(encodeJson(reply));
      }
    })().catch((err: unknown) => this.#logger.warn({ err: String(err) }, "control subscription ended"));
  }

  /** The (boundary, capability) pairs to claim from, in turn. */
  #pairs(): Array<{ boundary: string; capability: string }> {
    return this.options.boundaries.flatMap((boundary) =>
      this.options.capabilities.map((capability) => ({ boundary, capability })),
    );
  }

  async #claimLoop(): Promise<void> {
    const pairs = this.#pairs();
    const wait = pairs.length === 1 ? CLAIM_WAIT_SINGLE_MS : CLAIM_WAIT_MANY_MS;
    while (!this.#stopping) {
      const pair = pairs[this.#pairIndex++ % pairs.length];
      if (!pair) return;
      let item: ClaimedWork | undefined;
      try {
        item = await this.#warp.work.claim({
          capability: pair.capability,
          boundary: pair.boundary,
          timeoutMs: wait,
        });
      } catch (err) {
        if (this.#stopping) return;
        this.#logger.warn(
          { ...pair, err: err instanceof Error ? err.message : String(err) },
          "claim failed; retrying shortly",
        );
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      if (!item) continue;
      if (this.#stopping) {
        // Claimed while stopping: hand it straight back.
        await this.#warp.work.fail(item.workId, "the agent is shutting down", true).catch(() => undefined);
        return;
      }
      await this.#process(item);
    }
  }

  async #presence(): Promise<void> {
    const n = this.#running.size;
    await this.#warp.registry
      .updatePresence({ status: n > 0 ? "busy" : "online", currentTaskCount: n })
      .catch((err: unknown) => this.#logger.debug({ err: String(err) }, "presence update failed"));
  }

  async #process(item: ClaimedWork): Promise<void> {
    const running: Running = { item, child: undefined, abandoned: false };
    this.#running.set(item.workId, running);
    this.#lastActivity = Date.now();
    this.#logger.info({ workId: item.workId, taskId: item.taskId, attempt: item.attempts }, "claimed");
    await this.#presence();
    const ackWaitMs = this.#warp.work.settings.ackWaitMs;
    const extend = setInterval(
      () => {
        this.#warp.work
          .progress(item.workId)
          .catch((err: unknown) =>
            this.#logger.warn({ workId: item.workId, err: String(err) }, "could not extend the claim"),
          );
      },
      Math.max(200, Math.floor(ackWaitMs / 3)),
    );
    try {
      const outcome = await this.#runCommand(running);
      if (running.abandoned) return;
      if (outcome.code === 0) {
        await this.#warp.work.complete(item.workId, {
          exitCode: 0,
          output: outcome.output,
          truncated: outcome.truncated,
          ...(outcome.outputFile ? { outputFile: outcome.outputFile } : {}),
        });
        this.completed.push(item.workId);
        this.#logger.info({ workId: item.workId }, "completed");
      } else {
        const retryable = outcome.code === RETRYABLE_EXIT_CODE;
        const reason = `command exited with ${outcome.signal ? `signal ${outcome.signal}` : `code ${outcome.code}`}${retryable ? " (retryable)" : ""}: ${outcome.output.slice(-1_500)}`;
        await this.#warp.work.fail(item.workId, reason, retryable);
        this.#logger.info({ workId: item.workId, code: outcome.code, retryable }, "failed");
      }
    } catch (err) {
      this.#logger.warn(
        { workId: item.workId, err: err instanceof Error ? err.message : String(err) },
        "could not report the outcome",
      );
    } finally {
      clearInterval(extend);
      this.#running.delete(item.workId);
      this.#lastActivity = Date.now();
      await this.#presence();
    }
  }

  /** Runs the command through the shell with the item in env and as JSON on stdin. */
  #runCommand(running: Running): Promise<{
    code: number | null;
    signal: string | null;
    output: string;
    truncated: boolean;
    outputFile?: string;
  }> {
    const { item } = running;
    const o = this.options;
    mkdirSync(o.outputDir, { recursive: true });
    const outputFile = join(o.outputDir, `${item.workId}.log`);
    const file = createWriteStream(outputFile, { mode: 0o600 });
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      LOOMINAL_WORK_ID: item.workId,
      LOOMINAL_WORK_TASK_ID: item.taskId,
      LOOMINAL_WORK_DESCRIPTION: item.description,
      LOOMINAL_WORK_CAPABILITY: item.capability,
      LOOMINAL_WORK_BOUNDARY: item.boundary,
      LOOMINAL_WORK_PRIORITY: String(item.priority),
      LOOMINAL_WORK_ATTEMPT: String(item.attempts),
      LOOMINAL_WORK_CONTEXT: JSON.stringify(item.contextData ?? {}),
      ...(item.deadline ? { LOOMINAL_WORK_DEADLINE: item.deadline } : {}),
    };
    return new Promise((resolve) => {
      const child = spawn("/bin/sh", ["-c", o.command], {
        env,
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
      });
      running.child = child;
      let kept = "";
      let total = 0;
      const take = (d: Buffer) => {
        file.write(d);
        total += d.length;
        if (kept.length < o.maxOutputBytes)
          kept += d.toString("utf8").slice(0, o.maxOutputBytes - kept.length);
      };
      child.stdout?.on("data", take);
      child.stderr?.on("data", take);
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(JSON.stringify(item));
      const finish = (code: number | null, signal: string | null) => {
        file.end();
        const truncated = total > Buffer.byteLength(kept);
        resolve({ code, signal, output: kept, truncated, ...(truncated ? { outputFile } : {}) });
      };
      child.once("error", (err) => {
        kept += `\n${err.message}`;
        finish(127, null);
      });
      child.once("close", (code, signal) => finish(code, signal));
    });
  }

  /** Hands every item in hand back to the queue and stops its command. */
  async #abandonAll(): Promise<void> {
    await Promise.all(
      [...this.#running.values()].map(async (r) => {
        r.abandoned = true;
        if (r.child?.pid) {
          try {
            process.kill(-r.child.pid, "SIGTERM");
          } catch {
            r.child.kill("SIGTERM");
          }
        }
        await this.#warp.work
          .fail(r.item.workId, "the agent was shut down; handed back", true)
          .catch((err: unknown) =>
            this.#logger.warn(
              { workId: r.item.workId, err: String(err) },
              "could not hand an item back; it returns after its claim lapses",
            ),
          );
      }),
    );
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#idleTimer);
    await Promise.allSettled(this.#loops);
    this.#control?.unsubscribe();
    this.#logger.info({ reason: this.#stopReason, completed: this.completed.length }, "agent stopped");
  }
}
