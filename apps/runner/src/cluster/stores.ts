import { type BucketSpec, ensureBucket, ensureStream, type Fabric, type StreamSpec } from "@loominal/fabric";
import { buckets, consumers, streams, subjects } from "@loominal/protocol";
import { AckPolicy, type Consumer, DeliverPolicy, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { RunnerConfig } from "../env.js";

/** JetStream API error: consumer not found. */
const JS_CONSUMER_NOT_FOUND = 10014;

/** Every bucket and stream the runner uses, opened (and created if missing) once per process. */
export interface RunnerStores {
  runs: KV;
  quotas: KV;
  replicas: KV;
  state: KV;
  locks: KV;
  memory: KV;
  evals: KV;
  admit: Consumer;
  specs: {
    admit: StreamSpec;
    events: StreamSpec;
    channels: StreamSpec;
  };
}

export type StoreSettings = Pick<
  RunnerConfig,
  | "maxConcurrentRuns"
  | "queueMax"
  | "replicaTtlMs"
  | "lockTtlMs"
  | "admitAckWaitMs"
  | "eventsMaxAgeMs"
  | "channelsMaxAgeMs"
> & { natsReplicas?: number };

export function bucketSpecs(s: StoreSettings): Record<string, BucketSpec> {
  const replicas = s.natsReplicas ?? 1;
  return {
    runs: { name: buckets.runnerRuns(), history: 1, replicas },
    quotas: { name: buckets.runnerQuotas(), history: 1, replicas },
    replicas: { name: buckets.runnerReplicas(), history: 1, ttlMs: s.replicaTtlMs, replicas },
    state: { name: buckets.runnerState(), history: 1, replicas },
    locks: { name: buckets.runnerLocks(), history: 1, ttlMs: s.lockTtlMs, replicas },
    memory: { name: buckets.runnerMemory(), history: 1, replicas },
    evals: { name: buckets.runnerEvals(), history: 1, replicas },
  };
}

export function streamSpecs(s: StoreSettings): RunnerStores["specs"] {
  const replicas = s.natsReplicas ?? 1;
  return {
    // Every message is a run request waiting or running: cap + queue of them at most, then publishes fail.
    admit: {
      name: streams.runnerAdmit(),
      subjects: [subjects.runnerAdmit()],
      retention: "workqueue",
      maxMsgs: s.maxConcurrentRuns + s.queueMax,
      discard: "new",
      duplicateWindowMs: 120_000,
      replicas,
    },
    events: {
      name: streams.runnerEvents(),
      subjects: [subjects.runnerEventsAll()],
      retention: "limits",
      maxAgeMs: s.eventsMaxAgeMs,
      duplicateWindowMs: 120_000,
      allowDirect: true,
      replicas,
    },
    channels: {
      name: streams.runnerChannels(),
      subjects: [subjects.runnerChannelAll()],
      retention: "limits",
      maxAgeMs: s.channelsMaxAgeMs,
      maxMsgsPerSubject: 1_000,
      allowDirect: true,
      replicas,
    },
  };
}

/**
 * Opens the runner's buckets and streams (creating them when missing) and the admission consumer, whose
 * max_ack_pending is the cluster-wide run cap: the server never hands out more unacknowledged run
 * requests than that, whichever replica pulls them. A replica started with another cap or TTL than the
 * existing configuration fails with ConfigMismatchError rather than silently using it.
 */
export async function openStores(fabric: Fabric, s: StoreSettings): Promise<RunnerStores> {
  const b = bucketSpecs(s);
  const specs = streamSpecs(s);
  const open = (spec: BucketSpec | undefined) => ensureBucket(fabric, spec as BucketSpec);
  const [runs, quotas, replicas, state, locks, memory, evals] = await Promise.all([
    open(b.runs),
    open(b.quotas),
    open(b.replicas),
    open(b.state),
    open(b.locks),
    open(b.memory),
    open(b.evals),
  ]);
  // "update": a changed cap or retention is an operator decision, applied by the first replica started with it.
  await Promise.all([
    ensureStream(fabric, specs.admit, "update"),
    ensureStream(fabric, specs.events, "update"),
    ensureStream(fabric, specs.channels, "update"),
  ]);
  const jsm = await fabric.jsm();
  const name = consumers.runnerAdmit();
  const wanted = {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: s.maxConcurrentRuns,
    ack_wait: s.admitAckWaitMs * 1_000_000,
    // A run request is tried again after its replica died; never given up on by the server.
    max_deliver: -1,
  };
  try {
    const info = await jsm.consumers.info(specs.admit.name, name);
    if (info.config.max_ack_pending !== wanted.max_ack_pending || info.config.ack_wait !== wanted.ack_wait) {
      await jsm.consumers.update(specs.admit.name, name, {
        max_ack_pending: wanted.max_ack_pending,
        ack_wait: wanted.ack_wait,
      });
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JS_CONSUMER_NOT_FOUND)) throw err;
    await jsm.consumers.add(specs.admit.name, wanted).catch(async (e: unknown) => {
      // Another replica created it first.
      if (!(await jsm.consumers.info(specs.admit.name, name).catch(() => undefined))) throw e;
    });
  }
  const admit = await fabric.js.consumers.get(specs.admit.name, name);
  return { runs, quotas, replicas, state, locks, memory, evals, admit, specs };
}
