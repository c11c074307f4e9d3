import { InvalidNameError } from "./errors.js";
import { assertAgentId, assertNameToken, assertProjectId } from "./names.js";
import {
  assertReplicaId,
  assertRunId,
  assertRunnerAgentId,
  runnerTextToken,
  runnerUserToken,
} from "./runner-names.js";

/**
 * Every NATS subject, stream, consumer and bucket name Loominal uses, in one place.
 * Each function validates its inputs, so no dot or wildcard from user input ever reaches a subject.
 * `p` is always a projectId.
 */

const p = assertProjectId;

export const DEFAULT_BOUNDARY = "default";

export const subjects = {
  /** All channel messages of a project: `loom.<p>.chan.<channel>`. */
  channel: (projectId: string, channel: string) =>
    `loom.${p(projectId)}.chan.${assertNameToken(channel, "channel")}`,
  channelAll: (projectId: string) => `loom.${p(projectId)}.chan.>`,
  inbox: (projectId: string, agentId: string) => `loom.${p(projectId)}.inbox.${assertAgentId(agentId)}`,
  inboxAll: (projectId: string) => `loom.${p(projectId)}.inbox.>`,
  workOffer: (projectId: string, boundary: string, capability: string) =>
    `loom.${p(projectId)}.work.${assertNameToken(boundary, "boundary")}.${assertNameToken(capability, "capability")}`,
  workAll: (projectId: string) => `loom.${p(projectId)}.work.>`,
  dlq: (projectId: string, capability: string) =>
    `loom.${p(projectId)}.dlq.${assertNameToken(capability, "capability")}`,
  dlqAll: (projectId: string) => `loom.${p(projectId)}.dlq.>`,
  agentControl: (projectId: string, agentId: string) =>
    `loom.${p(projectId)}.agent.${assertAgentId(agentId)}.control`,
  coordinator: (projectId: string, op: string) => `coord.${p(projectId)}.${assertNameToken(op, "name")}`,
  coordinatorAll: (projectId: string) => `coord.${p(projectId)}.>`,
  /** Events Weft publishes for its SSE clients: `loom.<p>.events.<kind>` (agent, work, target, spinup). */
  weftEvent: (projectId: string, kind: string) =>
    `loom.${p(projectId)}.events.${assertNameToken(kind, "name")}`,
  weftEventAll: (projectId: string) => `loom.${p(projectId)}.events.>`,
  /** Run requests waiting for a replica (work-queue stream runner_admit). */
  runnerAdmit: () => "runner.admit",
  /** The events of one run: `runner.events.<runId>`. */
  runnerEvents: (runId: string) => `runner.events.${assertRunId(runId)}`,
  runnerEventsAll: () => "runner.events.>",
  /** Cancel requests to the replica that owns a run (core request/reply). */
  runnerCancel: (replicaId: string) => `runner.cancel.${assertReplicaId(replicaId)}`,
  runnerCancelAll: () => "runner.cancel.>",
  /** Agent-tool channel messages: `runner.chan.<scope token>.<topic token>` (scope = tenant or user). */
  runnerChannel: (scope: string, topic: string) =>
    `runner.chan.${runnerTextToken(scope, "scope")}.${runnerTextToken(topic, "topic")}`,
  runnerChannelAll: () => "runner.chan.>",
} as const;

export const streams = {
  /** One stream per channel, so each channel keeps its own max msgs / bytes / age. */
  channel: (projectId: string, channel: string) =>
    `loom_${p(projectId)}_chan_${assertNameToken(channel, "channel")}`,
  inbox: (projectId: string) => `loom_${p(projectId)}_inbox`,
  work: (projectId: string) => `loom_${p(projectId)}_work`,
  dlq: (projectId: string) => `loom_${p(projectId)}_dlq`,
  /** Weft's events of one project (agent, work, target, spin-up), replayed to SSE clients by sequence. */
  weftEvents: (projectId: string) => `loom_${p(projectId)}_events`,
  runnerEvents: () => "runner_events",
  runnerAdmit: () => "runner_admit",
  runnerChannels: () => "runner_channels",
} as const;

export const consumers = {
  /**
   * The durable consumer through which every claimer of one boundary+capability pulls:
   * `work_<boundary>_<capability>_<length of boundary>`. Tokens may contain `_`, so `work_<b>_<c>` alone
   * would give ("a_b", "c") and ("a", "b_c") one consumer; the boundary's length, after the last `_`,
   * says where the boundary ends, which makes the name injective (and it stays readable).
   * At most 137 characters.
   */
  work: (boundary: string, capability: string) => {
    const b = assertNameToken(boundary, "boundary");
    return `work_${b}_${assertNameToken(capability, "capability")}_${b.length}`;
  },
  /** The one durable consumer every runner replica pulls run requests through. */
  runnerAdmit: () => "runner_admit_pull",
} as const;

export const buckets = {
  workLedger: (projectId: string) => `loom-work-${p(projectId)}`,
  registry: () => "loom-registry",
  memory: (projectId: string) => `loom-mem-${p(projectId)}`,
  memoryEphemeral: (projectId: string) => `loom-mem-${p(projectId)}-ephemeral`,
  memoryPersonal: () => "loom-mem-personal",
  memoryPublic: () => "loom-mem-public",
  shuttle: (projectId: string) => `loom-shuttle-${p(projectId)}`,
  targets: (projectId: string) => `loom-targets-${p(projectId)}`,
  /** Spin-ups Weft made for a project and their state (key `<spinUpId>`). */
  spinUps: (projectId: string) => `loom-spinups-${p(projectId)}`,
  /** Routing policy per boundary (key `<boundary>`), written by Weft, read by every claimer. */
  boundaries: () => "loom-boundaries",
  leases: () => "loom-leases",
  /**
   * File and path leases of a project: one key (`keys.fileLeaseTable()`) holding every lease, so that
   * acquiring is one compare-and-set against all overlapping globs. No bucket TTL: each lease expires by
   * its own stored `expiresAt` and with its holder's identity.
   */
  fileLeases: (projectId: string) => `loom-file-leases-${p(projectId)}`,
  /** What `loominal hook` has already put in front of each agent (key `<agentId>`), so nothing twice. */
  reminders: (projectId: string) => `loom-reminders-${p(projectId)}`,
  /**
   * Offers on their way from the ledger to the work stream, one key per offering process
   * (`<p>.<token>`), so work maintenance can queue what an offerer that died in between left pending.
   */
  offerJournal: () => "loom-offer-journal",
  /** Who holds each agent identity (key `<p>.<agentId>`), so two live processes never share one inbox. */
  agentIdentities: () => "loom-agent-ids",
  /** Which direct messages each agent has read (key `<p>.<agentId>`), so each is returned once. */
  inboxLedger: () => "loom-inbox-ledger",
  /** Acknowledgements of direct messages sent with `ackRequired` (key `<senderId>.<messageId>`). */
  messageAcks: (projectId: string) => `loom-acks-${p(projectId)}`,
  runnerRuns: () => "runner-runs",
  runnerQuotas: () => "runner-quotas",
  runnerReplicas: () => "runner-replicas",
  runnerState: () => "runner-state",
  runnerLocks: () => "runner-locks",
  /** Agent-tool memory (memory_set / memory_get), per user or tenant. */
  runnerMemory: () => "runner-memory",
  /** Evaluations submitted against runs (evaluation_submit). */
  runnerEvals: () => "runner-evals",
} as const;

/**
 * TTL of the shared lease bucket `loom-leases`, in ms. On nats-server 2.9 a TTL belongs to the bucket
 * (stream max_age, counted from each key's last write), so every user of the bucket opens it with this
 * value; a lease holder renews well within it.
 */
export const LEASES_BUCKET_TTL_MS = 15_000;

/** Keys of the shared `loom-leases` bucket; each starts with the project, as permissions require. */
export const leaseKeys = {
  /** The one process per project that runs work-queue maintenance (lapsed claims, stranded offers, retention). */
  workMaintenance: (projectId: string) => `${p(projectId)}.work-maintenance`,
  /**
   * The Weft instance that runs the coordinator's loops for every project. Not under a project: Weft runs
   * with operator credentials, and no project's agents may write it.
   */
  weftLeader: () => "weft.leader",
} as const;

export const keys = {
  /** Registry keys are `<projectId>.<agentId>` so one project's agents list with `keys("<p>.>")`. */
  registry: (projectId: string, agentId: string) => `${p(projectId)}.${assertAgentId(agentId)}`,
  registryPrefix: (projectId: string) => `${p(projectId)}.>`,
  /** Identity claims use the same `<projectId>.<agentId>` shape as registry keys. */
  agentIdentity: (projectId: string, agentId: string) => `${p(projectId)}.${assertAgentId(agentId)}`,
  inboxLedger: (projectId: string, agentId: string) => `${p(projectId)}.${assertAgentId(agentId)}`,
  /** The one key of a project's file-lease bucket: the whole lease table, changed by compare-and-set. */
  fileLeaseTable: () => "table",
  /** An agent's reminder state in the project's reminders bucket. */
  reminders: (agentId: string) => assertAgentId(agentId),
  /** An acknowledgement record: `<senderId>.<messageId>`, so a sender lists its own with `<senderId>.>`. */
  messageAck: (senderId: string, messageId: string) =>
    `${assertAgentId(senderId)}.${assertAgentId(messageId)}`,
  /** One offering process's journal: `<p>.<token>`, the token 32 hex, random per process. */
  offerJournal: (projectId: string, token: string) => `${p(projectId)}.${assertAgentId(token)}`,
  offerJournalPrefix: (projectId: string) => `${p(projectId)}.>`,
  /**
   * Memory keys start with their owner, so a reader lists only what it may read with `<prefix>.>`:
   * private `a.<agentId>.<category>.<memoryId>` (project bucket or its ephemeral twin), team
   * `t.<category>.<memoryId>` (project bucket), personal `u.<userId>.<category>.<memoryId>`, public
   * `p.<userId>.<category>.<memoryId>` (the writer's userId, so server permissions let only the author
   * change or forget it). The prefix is always derived from the reader's identity, never from input.
   */
  memoryPrivate: (agentId: string, category: string, memoryId: string) =>
    `a.${assertAgentId(agentId)}.${assertNameToken(category, "category")}.${memoryIdToken(memoryId)}`,
  memoryPrivatePrefix: (agentId: string) => `a.${assertAgentId(agentId)}.>`,
  memoryTeam: (category: string, memoryId: string) =>
    `t.${assertNameToken(category, "category")}.${memoryIdToken(memoryId)}`,
  memoryTeamPrefix: () => "t.>",
  memoryPersonal: (userId: string, category: string, memoryId: string) =>
    `u.${assertAgentId(userId)}.${assertNameToken(category, "category")}.${memoryIdToken(memoryId)}`,
  memoryPersonalPrefix: (userId: string) => `u.${assertAgentId(userId)}.>`,
  memoryPublic: (userId: string, category: string, memoryId: string) =>
    `p.${assertAgentId(userId)}.${assertNameToken(category, "category")}.${memoryIdToken(memoryId)}`,
  /** Every public memory (`p.>`), or those one user wrote (`p.<userId>.>`). */
  memoryPublicPrefix: (userId?: string) => (userId === undefined ? "p.>" : `p.${assertAgentId(userId)}.>`),
  /** Run record in runner-runs: `r.<user token>.<runId>` (the run id starts with the user token). */
  runnerRun: (runId: string) => `r.${assertRunId(runId).slice(0, 16)}.${runId}`,
  runnerUserRunsPrefix: (userId: string) => `r.${runnerUserToken(userId)}.>`,
  runnerRunsPrefix: () => "r.>",
  /** A user's admitted runs (queued or running) in runner-quotas. */
  runnerQuota: (userId: string) => `u.${runnerTextToken(userId, "user_id")}`,
  runnerQuotasPrefix: () => "u.>",
  /** Heartbeat of one replica in runner-replicas (bucket TTL). */
  runnerReplica: (replicaId: string) => `replica.${assertReplicaId(replicaId)}`,
  runnerReplicasPrefix: () => "replica.>",
  /** The reaper's singleton lease, in runner-replicas (same TTL). */
  runnerReaperLease: () => "lease.reaper",
  /** The cluster's pause state in runner-state. */
  runnerPause: () => "pause",
  /** Session lock and agent_id claim in runner-locks (bucket TTL, refreshed while the run lives). */
  runnerSessionLock: (sessionId: string) => `session.${runnerTextToken(sessionId, "session_id")}`,
  runnerAgentIdLock: (agentId: string) => `agent.${assertRunnerAgentId(agentId)}`,
  /** Memory in runner-memory: `<u|t>.<owner token>.<key token>`. */
  runnerMemory: (scope: "user" | "tenant", owner: string, key: string) =>
    `${scope === "user" ? "u" : "t"}.${runnerTextToken(owner, scope === "user" ? "user_id" : "tenant_id")}.${runnerTextToken(key, "key")}`,
  /** One evaluation in runner-evals: `<runId>.<evaluationId>`. */
  runnerEvaluation: (runId: string, evaluationId: string) =>
    `${assertRunId(runId)}.${assertAgentId(evaluationId)}`,
  runnerEvaluationsPrefix: (runId: string) => `${assertRunId(runId)}.>`,
} as const;

/** Memory ids have the agentId format (32 hex); checked here so no dot or wildcard reaches a key. */
function memoryIdToken(memoryId: string): string {
  if (!/^[0-9a-f]{32}$/.test(memoryId)) {
    throw new InvalidNameError(
      `memoryId ${JSON.stringify(memoryId.slice(0, 80))} must be 32 lower-case hex characters`,
      {
        kind: "memoryId",
      },
    );
  }
  return memoryId;
}

/** One row of the NATS layout table (DESIGN §4), rendered into docs/architecture.md. */
export interface LayoutRow {
  what: string;
  subject: string;
  store: string;
  retention: string;
}

const EX = "myproj";
const EXA = "0123456789abcdef0123456789abcdef";

/** The layout table, computed from the functions above so the docs cannot drift from the code. */
export function natsLayout(): LayoutRow[] {
  return [
    {
      what: "channel messages",
      subject: subjects.channel(EX, "roadmap"),
      store: `stream ${streams.channel(EX, "roadmap")} (one per channel)`,
      retention: "limits; the channel's own max msgs/bytes/age",
    },
    {
      what: "direct messages",
      subject: subjects.inbox(EX, EXA),
      store: `stream ${streams.inbox(EX)}`,
      retention: `limits, max msgs per agent; what each agent has read: KV ${buckets.inboxLedger()} key ${keys.inboxLedger(EX, EXA)}`,
    },
    {
      what: "direct-message acknowledgements",
      subject: `key ${keys.messageAck(EXA, EXA)}`,
      store: `KV ${buckets.messageAcks(EX)}`,
      retention:
        "history 1, bucket TTL the inbox's maxAgeMs; written pending by the sender, acknowledged by the recipient",
    },
    {
      what: "work offers",
      subject: subjects.workOffer(EX, DEFAULT_BOUNDARY, "typescript"),
      store: `stream ${streams.work(EX)}`,
      retention: `work-queue; durable consumer ${consumers.work(DEFAULT_BOUNDARY, "typescript")}, explicit ack`,
    },
    {
      what: "dead letters",
      subject: subjects.dlq(EX, "typescript"),
      store: `stream ${streams.dlq(EX)}`,
      retention: "limits, 30 d",
    },
    {
      what: "work ledger",
      subject: "key <workId>",
      store: `KV ${buckets.workLedger(EX)}`,
      retention:
        "state of every item; transitions by CAS; history 4; finished items removed after work.retentionDays",
    },
    {
      what: "work events",
      subject: `$KV.${buckets.workLedger(EX)}.<workId>`,
      store: `the ledger's own writes (KV ${buckets.workLedger(EX)})`,
      retention: "each write names its events (lastTransition); watch the bucket",
    },
    {
      what: "agent registry",
      subject: `key ${keys.registry(EX, EXA)}`,
      store: `KV ${buckets.registry()}`,
      retention: "one bucket, all projects",
    },
    {
      what: "agent identities",
      subject: `key ${keys.agentIdentity(EX, EXA)}`,
      store: `KV ${buckets.agentIdentities()} (bucket TTL)`,
      retention: "held by the live process using that agentId; expires when not renewed",
    },
    {
      what: "agent control",
      subject: subjects.agentControl(EX, EXA),
      store: "core request/reply",
      retention: "shutdown, ping",
    },
    {
      what: "memory",
      subject:
        "key a.<agentId>.<category>.<id> · t.<category>.<id> · u.<userId>.core.<id> · p.<userId>.<category>.<id>",
      store: `KV ${buckets.memory(EX)}, ${buckets.memoryEphemeral(EX)} (bucket TTL), ${buckets.memoryPersonal()}, ${buckets.memoryPublic()}`,
      retention: "ephemeral categories expire with the bucket TTL",
    },
    {
      what: "orchestrations",
      subject: "key <orchestrationId>",
      store: `KV ${buckets.shuttle(EX)}`,
      retention: "+ files under the work dir",
    },
    {
      what: "coordinator API",
      subject: subjects.coordinator(EX, "submit"),
      store: "core request/reply, queue group weft",
      retention: "",
    },
    {
      what: "spin-up targets",
      subject: "key <targetId>",
      store: `KV ${buckets.targets(EX)}`,
      retention: "",
    },
    {
      what: "spin-ups",
      subject: "key <spinUpId>",
      store: `KV ${buckets.spinUps(EX)}`,
      retention: "starting → running | failed → stopped",
    },
    {
      what: "boundary policies",
      subject: "key <boundary>",
      store: `KV ${buckets.boundaries()}`,
      retention: "written by Weft from its config; read by every claimer",
    },
    {
      what: "Weft events",
      subject: subjects.weftEvent(EX, "work"),
      store: `stream ${streams.weftEvents(EX)}`,
      retention: "limits, 24 h; SSE resumes by sequence",
    },
    {
      what: "offer journal",
      subject: `key ${keys.offerJournal(EX, EXA)}`,
      store: `KV ${buckets.offerJournal()}`,
      retention: "offers between ledger write and publish, per offering process; removed by work maintenance",
    },
    {
      what: "leases",
      subject: `key <p>.<name>, e.g. ${leaseKeys.workMaintenance(EX)}`,
      store: `KV ${buckets.leases()} (bucket TTL ${LEASES_BUCKET_TTL_MS / 1000} s)`,
      retention: "singleton locks; expire when not renewed",
    },
    {
      what: "file and path leases",
      subject: `key ${keys.fileLeaseTable()}`,
      store: `KV ${buckets.fileLeases(EX)}`,
      retention:
        "every lease of the project in one value, by CAS; expire at expiresAt or with the holder's identity",
    },
    {
      what: "hook reminders",
      subject: `key ${keys.reminders(EXA)}`,
      store: `KV ${buckets.reminders(EX)}`,
      retention: "what loominal hook has shown each agent (messages, work, lease conflicts)",
    },
    {
      what: "runner: admission",
      subject: subjects.runnerAdmit(),
      store: `work-queue stream ${streams.runnerAdmit()}, durable consumer ${consumers.runnerAdmit()}`,
      retention: "max ack pending = the cluster-wide run cap; max msgs = cap + queue, discard new",
    },
    {
      what: "runner: run records",
      subject: `key ${keys.runnerRun(EXA)}`,
      store: `KV ${buckets.runnerRuns()}`,
      retention: "terminal state written once by CAS",
    },
    {
      what: "runner: run events",
      subject: subjects.runnerEvents(EXA),
      store: `stream ${streams.runnerEvents()}`,
      retention: "limits, max age (RUNNER_EVENTS_MAX_AGE_MS)",
    },
    {
      what: "runner: per-user quota",
      subject: "key u.<base64url user_id>",
      store: `KV ${buckets.runnerQuotas()}`,
      retention: "the user's admitted run ids; CAS, never above the cap",
    },
    {
      what: "runner: replicas and reaper",
      subject: `key ${keys.runnerReplica("replica-1")}, ${keys.runnerReaperLease()}`,
      store: `KV ${buckets.runnerReplicas()} (bucket TTL)`,
      retention: "heartbeats; missing key means dead",
    },
    {
      what: "runner: cancel",
      subject: subjects.runnerCancel("replica-1"),
      store: "core request/reply",
      retention: "",
    },
    {
      what: "runner: pause, locks",
      subject: `key ${keys.runnerPause()} · session.<base64url id>, agent.<agent_id>`,
      store: `KV ${buckets.runnerState()}, ${buckets.runnerLocks()} (bucket TTL)`,
      retention: "CAS transitions; locks refreshed while their run lives",
    },
    {
      what: "runner: agent tools",
      subject: "runner.chan.<scope>.<topic> · key <u|t>.<owner>.<key> · key <runId>.<evaluationId>",
      store: `stream ${streams.runnerChannels()}; KV ${buckets.runnerMemory()}, ${buckets.runnerEvals()}`,
      retention: "channels: limits, max age",
    },
  ];
}

/** The layout table as Markdown. */
export function natsLayoutMarkdown(): string {
  const rows = natsLayout().map((r) => `| ${r.what} | \`${r.subject}\` | ${r.store} | ${r.retention} |`);
  return ["| what | subject / key | stream or bucket | retention |", "|---|---|---|---|", ...rows].join("\n");
}
