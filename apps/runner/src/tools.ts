import { casUpdate, entryValue, type Fabric, jsonCodec, NatsUnavailableError } from "@loominal/fabric";
import { keys, RUNNER_TEXT_MAX, randomId, runnerTextToken, streams, subjects } from "@loominal/protocol";
import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { z } from "zod";
import type { ToolName } from "./agents.js";
import type { RunRecord } from "./cluster/records.js";
import { listKeys } from "./cluster/state.js";
import { type ToolBox, ToolFailure } from "./loop.js";
import type { ToolCall, ToolSpec } from "./providers/types.js";

/** While channel_subscribe waits, how often it reads the stream again besides waiting for the wakeup (ms). */
const SUBSCRIBE_RECHECK_MS = 2_000;

/** JetStream API error: no message found. */
const JS_NO_MESSAGE = 10037;

const channelMessageSchema = z.object({
  topic: z.string(),
  message: z.unknown(),
  run_id: z.string(),
  agent: z.string(),
  published_at: z.string(),
});
const channelCodec = jsonCodec(channelMessageSchema);

const memoryValueSchema = z.object({
  value: z.unknown(),
  version: z.number().int(),
  updated_at: z.string(),
  run_id: z.string(),
});
const memoryCodec = jsonCodec(memoryValueSchema);

const evaluationSchema = z.object({
  evaluation_id: z.string(),
  run_id: z.string(),
  score: z.number(),
  rationale: z.string(),
  by_run_id: z.string(),
  at: z.string(),
});
const evaluationCodec = jsonCodec(evaluationSchema);
export type Evaluation = z.infer<typeof evaluationSchema>;

const text = z.string().min(1).max(RUNNER_TEXT_MAX);
const scope = z.enum(["user", "tenant"]).optional();

const INPUTS = {
  channel_publish: z.object({ topic: text, message: z.unknown() }).strict(),
  channel_subscribe: z
    .object({
      topic: text,
      timeout_ms: z.number().int().min(0).max(300_000).default(30_000),
      after_seq: z.number().int().min(0).default(0),
    })
    .strict(),
  memory_set: z
    .object({ key: text, value: z.unknown(), scope, expected_version: z.number().int().min(0).optional() })
    .strict(),
  memory_get: z.object({ key: text, scope }).strict(),
  evaluation_submit: z
    .object({
      run_id: z.string().regex(/^[0-9a-f]{32}$/),
      score: z.number().min(0).max(1),
      rationale: z.string().max(4_000),
    })
    .strict(),
} as const;

const DESCRIPTIONS: Record<ToolName, string> = {
  channel_publish: "Publishes a JSON message on a topic shared by the runs of this tenant (or user).",
  channel_subscribe:
    "Returns the first message on a topic after after_seq (0: the oldest kept), waiting up to timeout_ms for one to arrive. Pass the returned seq as after_seq to read the next.",
  memory_set:
    "Stores a JSON value under a key, per user (default) or tenant. Each write bumps the key's version; with expected_version the write only happens if the version is still that one.",
  memory_get: "Reads the value and version stored under a key, per user (default) or tenant.",
  evaluation_submit: "Records a score in [0, 1] and a rationale against a run id.",
};

/** JSON Schema of each tool's input, from its zod schema (the single source of truth). */
export const TOOL_SPECS: Record<ToolName, ToolSpec> = Object.fromEntries(
  (Object.keys(INPUTS) as ToolName[]).map((name) => [
    name,
    {
      name,
      description: DESCRIPTIONS[name],
      inputSchema: z.toJSONSchema(INPUTS[name], { io: "input", unrepresentable: "any" }) as Record<
        string,
        unknown
      >,
    },
  ]),
) as Record<ToolName, ToolSpec>;

/** The result of a tool the model should see as a failure (bad input, nothing arrived, version moved). */
class ToolRefusal extends Error {}

export interface ToolStores {
  fabric: Fabric;
  memory: KV;
  evals: KV;
}

/**
 * The agent tools on NATS: channels on stream runner_channels, memory in runner-memory, evaluations in
 * runner-evals. Input the model got wrong comes back as an error result it can read; a write NATS did not
 * confirm throws ToolFailure, which fails the run — it is never reported as a success.
 */
export class RunnerTools {
  #s: ToolStores;

  constructor(stores: ToolStores) {
    this.#s = stores;
  }

  /** The tool box of one run: only the tools its agent allows. */
  forRun(
    run: Pick<RunRecord, "run_id" | "agent" | "user_id" | "tenant_id">,
    allowed: readonly ToolName[],
  ): ToolBox {
    return {
      specs: allowed.map((n) => TOOL_SPECS[n]),
      run: (call, signal) => this.#run(run, allowed, call, signal),
    };
  }

  async #run(
    run: Pick<RunRecord, "run_id" | "agent" | "user_id" | "tenant_id">,
    allowed: readonly ToolName[],
    call: ToolCall,
    signal: AbortSignal,
  ): Promise<{ output: unknown; isError: boolean }> {
    const name = call.name as ToolName;
    if (!allowed.includes(name)) {
      return { output: `unknown tool ${call.name}; this agent has ${allowed.join(", ")}`, isError: true };
    }
    const parsed = INPUTS[name].safeParse(call.input);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ");
      return { output: `invalid input for ${name}: ${why}`, isError: true };
    }
    try {
      const output = await this.#dispatch(run, name, parsed.data as never, signal);
      return { output, isError: false };
    } catch (err) {
      if (err instanceof ToolRefusal) return { output: err.message, isError: true };
      if (signal.aborted) throw signal.reason;
      throw new ToolFailure(`${name} failed: ${describe(err)}`);
    }
  }

  async #dispatch(
    run: Pick<RunRecord, "run_id" | "agent" | "user_id" | "tenant_id">,
    name: ToolName,
    input: never,
    signal: AbortSignal,
  ): Promise<unknown> {
    const channelScope = run.tenant_id ?? `user:${run.user_id}`;
    switch (name) {
      case "channel_publish": {
        const i = input as z.infer<(typeof INPUTS)["channel_publish"]>;
        const body = {
          topic: i.topic,
          message: i.message,
          run_id: run.run_id,
          agent: run.agent,
          published_at: new Date().toISOString(),
        };
        const ack = await this.#s.fabric.js.publish(
          subjects.runnerChannel(channelScope, i.topic),
          channelCodec.encode(body),
        );
        return { topic: i.topic, seq: ack.seq };
      }
      case "channel_subscribe": {
        const i = input as z.infer<(typeof INPUTS)["channel_subscribe"]>;
        return this.#subscribe(
          subjects.runnerChannel(channelScope, i.topic),
          i.after_seq,
          i.timeout_ms,
          signal,
        );
      }
      case "memory_set": {
        const i = input as z.infer<(typeof INPUTS)["memory_set"]>;
        const key = this.#memoryKey(run, i.key, i.scope);
        let moved: number | undefined;
        const r = await casUpdate(this.#s.memory, key, memoryCodec, (current) => {
          const version = current?.version ?? 0;
          if (i.expected_version !== undefined && i.expected_version !== version) {
            moved = version;
            return undefined;
          }
          moved = undefined;
          return {
            value: i.value,
            version: version + 1,
            updated_at: new Date().toISOString(),
            run_id: run.run_id,
          };
        });
        if (moved !== undefined) {
          throw new ToolRefusal(`${i.key} is at version ${moved}, not ${i.expected_version}; read it again`);
        }
        return { key: i.key, version: r.value?.version };
      }
      case "memory_get": {
        const i = input as z.infer<(typeof INPUTS)["memory_get"]>;
        const key = this.#memoryKey(run, i.key, i.scope);
        const v = entryValue(await this.#s.memory.get(key), memoryCodec, key).value;
        return v
          ? { key: i.key, found: true, value: v.value, version: v.version }
          : { key: i.key, found: false, version: 0 };
      }
      case "evaluation_submit": {
        const i = input as z.infer<(typeof INPUTS)["evaluation_submit"]>;
        const evaluation: Evaluation = {
          evaluation_id: randomId(),
          run_id: i.run_id,
          score: i.score,
          rationale: i.rationale,
          by_run_id: run.run_id,
          at: new Date().toISOString(),
        };
        await this.#s.evals.create(
          keys.runnerEvaluation(i.run_id, evaluation.evaluation_id),
          evaluationCodec.encode(evaluation),
        );
        return { evaluation_id: evaluation.evaluation_id, run_id: i.run_id };
      }
    }
  }

  #memoryKey(
    run: Pick<RunRecord, "user_id" | "tenant_id">,
    key: string,
    s: "user" | "tenant" | undefined,
  ): string {
    if (s === "tenant") {
      if (run.tenant_id === null) throw new ToolRefusal("scope tenant needs a run with a tenant_id");
      return keys.runnerMemory("tenant", run.tenant_id, key);
    }
    return keys.runnerMemory("user", run.user_id, key);
  }

  /**
   * The first message on the subject with a stream sequence above `after`. The core subscription is made
   * (and flushed to the server) BEFORE the stream is read, so a message published between "nothing yet"
   * and "waiting" reaches the subscription: no lost wakeup.
   */
  async #subscribe(subject: string, after: number, timeoutMs: number, signal: AbortSignal): Promise<unknown> {
    const nc = this.#s.fabric.nc;
    const sub = nc.subscribe(subject, { max: 1 });
    const deadline = Date.now() + timeoutMs;
    let stopWaiting = () => {};
    try {
      let lastError: unknown;
      try {
        await nc.flush();
        const found = await this.#next(subject, after);
        if (found) return found;
      } catch (err) {
        // NATS away at the start: wait and read again below, as after a missed wakeup.
        lastError = err;
      }
      let wake: Promise<unknown> = (async () => {
        try {
          for await (const _ of sub) return;
        } catch {
          // The subscription failed with its connection: the periodic read below still finds the message.
        }
      })();
      const aborted = new Promise<never>((_, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        stopWaiting = () => signal.removeEventListener("abort", onAbort);
      });
      aborted.catch(() => undefined);
      // Woken by the core subscription; the stream is also read again every SUBSCRIBE_RECHECK_MS, because
      // a message published while this connection was reconnecting (to another cluster node, or to a
      // restarted server) is stored but never delivered to the core subscription.
      while (Date.now() < deadline) {
        let timer: NodeJS.Timeout | undefined;
        const tick = new Promise((r) => {
          timer = setTimeout(r, Math.min(SUBSCRIBE_RECHECK_MS, Math.max(0, deadline - Date.now())));
        });
        const woken = await Promise.race([wake.then(() => true), tick.then(() => false), aborted]).finally(
          () => clearTimeout(timer),
        );
        if (woken) wake = new Promise(() => {});
        // After a wakeup the message is stored (publish → stream → fan-out), but on a replicated stream a
        // direct get may be answered by a replica that has not applied it yet: read again briefly.
        for (let attempt = 0; attempt < (woken ? 20 : 1); attempt++) {
          if (attempt > 0) await new Promise((r) => setTimeout(r, 50));
          try {
            const next = await this.#next(subject, after);
            lastError = undefined;
            if (next) return next;
          } catch (err) {
            // NATS away for a moment (a reconnect): read again at the next tick while time remains.
            lastError = err;
          }
        }
      }
      if (lastError !== undefined) throw lastError;
      throw new ToolRefusal(`nothing arrived on the topic within ${timeoutMs} ms`);
    } finally {
      stopWaiting();
      sub.unsubscribe();
    }
  }

  async #next(subject: string, after: number): Promise<unknown> {
    const jsm = await this.#s.fabric.jsm();
    try {
      const m = await jsm.direct.getMessage(streams.runnerChannels(), {
        next_by_subj: subject,
        seq: after + 1,
      });
      if (!m) return undefined;
      const body = channelCodec.decode(m.data, subject);
      return {
        topic: body.topic,
        seq: m.seq,
        message: body.message,
        run_id: body.run_id,
        agent: body.agent,
        published_at: body.published_at,
      };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JS_NO_MESSAGE) return undefined;
      throw err;
    }
  }

  /** Evaluations submitted against a run. */
  async evaluationsOf(runId: string): Promise<Evaluation[]> {
    const out: Evaluation[] = [];
    for (const k of await listKeys(this.#s.evals, keys.runnerEvaluationsPrefix(runId))) {
      const v = entryValue(await this.#s.evals.get(k), evaluationCodec, k).value;
      if (v) out.push(v);
    }
    return out.sort((a, b) => a.at.localeCompare(b.at));
  }

  /** A memory value as the tools see it (for tests and operators). */
  async memoryValue(scopeKind: "user" | "tenant", owner: string, key: string): Promise<unknown> {
    runnerTextToken(key, "key");
    const k = keys.runnerMemory(scopeKind, owner, key);
    return entryValue(await this.#s.memory.get(k), memoryCodec, k).value?.value;
  }
}

function describe(err: unknown): string {
  if (err instanceof NatsUnavailableError) return err.message;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
