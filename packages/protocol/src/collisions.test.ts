import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidNameError } from "./errors.js";
import { projectIdProblem } from "./names.js";
import { buckets, consumers, keys, streams, subjects } from "./subjects.js";

/**
 * Every name function, grouped by the namespace its names live in. Two different accepted inputs in one
 * namespace must never give the same name: a collision would let two projects (or a project and a shared
 * bucket) write into one stream, bucket, consumer or key. KV buckets are streams named `KV_<bucket>`, so
 * they share the stream namespace.
 */
type Arg = "project" | "token" | "agent" | "text" | "rid";
interface Family {
  namespace: string;
  name: string;
  args: Arg[];
  build: (...args: string[]) => string;
}

const bucketFamilies: Array<[string, Arg[], (...a: string[]) => string]> = [
  ["workLedger", ["project"], (p) => buckets.workLedger(p)],
  ["registry", [], () => buckets.registry()],
  ["memory", ["project"], (p) => buckets.memory(p)],
  ["memoryEphemeral", ["project"], (p) => buckets.memoryEphemeral(p)],
  ["memoryPersonal", [], () => buckets.memoryPersonal()],
  ["memoryPublic", [], () => buckets.memoryPublic()],
  ["shuttle", ["project"], (p) => buckets.shuttle(p)],
  ["targets", ["project"], (p) => buckets.targets(p)],
  ["spinUps", ["project"], (p) => buckets.spinUps(p)],
  ["boundaries", [], () => buckets.boundaries()],
  ["leases", [], () => buckets.leases()],
  ["agentIdentities", [], () => buckets.agentIdentities()],
  ["inboxLedger", [], () => buckets.inboxLedger()],
  ["offerJournal", [], () => buckets.offerJournal()],
  ["fileLeases", ["project"], (p) => buckets.fileLeases(p)],
  ["reminders", ["project"], (p) => buckets.reminders(p)],
  ["messageAcks", ["project"], (p) => buckets.messageAcks(p)],
  ["runnerRuns", [], () => buckets.runnerRuns()],
  ["runnerQuotas", [], () => buckets.runnerQuotas()],
  ["runnerReplicas", [], () => buckets.runnerReplicas()],
  ["runnerState", [], () => buckets.runnerState()],
  ["runnerLocks", [], () => buckets.runnerLocks()],
  ["runnerMemory", [], () => buckets.runnerMemory()],
  ["runnerEvals", [], () => buckets.runnerEvals()],
];

const FAMILIES: Family[] = [
  ...bucketFamilies.map(([name, args, build]) => ({ namespace: "bucket", name, args, build })),
  // The stream behind each bucket, beside the plain streams.
  ...bucketFamilies.map(([name, args, build]) => ({
    namespace: "stream",
    name: `KV_${name}`,
    args,
    build: (...a: string[]) => `KV_${build(...a)}`,
  })),
  {
    namespace: "stream",
    name: "channel",
    args: ["project", "token"],
    build: (p, c) => streams.channel(p, c),
  },
  { namespace: "stream", name: "inbox", args: ["project"], build: (p) => streams.inbox(p) },
  { namespace: "stream", name: "work", args: ["project"], build: (p) => streams.work(p) },
  { namespace: "stream", name: "dlq", args: ["project"], build: (p) => streams.dlq(p) },
  { namespace: "stream", name: "weftEvents", args: ["project"], build: (p) => streams.weftEvents(p) },
  { namespace: "stream", name: "runnerEvents", args: [], build: () => streams.runnerEvents() },
  { namespace: "stream", name: "runnerAdmit", args: [], build: () => streams.runnerAdmit() },
  { namespace: "stream", name: "runnerChannels", args: [], build: () => streams.runnerChannels() },
  { namespace: "consumer", name: "runnerAdmit", args: [], build: () => consumers.runnerAdmit() },
  { namespace: "subject", name: "runnerAdmit", args: [], build: () => subjects.runnerAdmit() },
  { namespace: "subject", name: "runnerEvents", args: ["agent"], build: (r) => subjects.runnerEvents(r) },
  { namespace: "subject", name: "runnerCancel", args: ["token"], build: (r) => subjects.runnerCancel(r) },
  {
    namespace: "subject",
    name: "runnerChannel",
    args: ["text", "text"],
    build: (s, t) => subjects.runnerChannel(s, t),
  },
  // Runner keys: one namespace per runner bucket.
  { namespace: "key:runner-runs", name: "runnerRun", args: ["rid"], build: (r) => keys.runnerRun(r) },
  { namespace: "key:runner-quotas", name: "runnerQuota", args: ["text"], build: (u) => keys.runnerQuota(u) },
  {
    namespace: "key:runner-replicas",
    name: "runnerReplica",
    args: ["token"],
    build: (r) => keys.runnerReplica(r),
  },
  {
    namespace: "key:runner-replicas",
    name: "runnerReaperLease",
    args: [],
    build: () => keys.runnerReaperLease(),
  },
  { namespace: "key:runner-state", name: "runnerPause", args: [], build: () => keys.runnerPause() },
  {
    namespace: "key:runner-locks",
    name: "runnerSessionLock",
    args: ["text"],
    build: (s) => keys.runnerSessionLock(s),
  },
  {
    namespace: "key:runner-locks",
    name: "runnerAgentIdLock",
    args: ["token"],
    build: (a) => keys.runnerAgentIdLock(a),
  },
  {
    namespace: "key:runner-memory",
    name: "runnerMemory",
    args: ["text", "text"],
    build: (o, k) => keys.runnerMemory("user", o, k),
  },
  {
    namespace: "key:runner-memory",
    name: "runnerMemory:tenant",
    args: ["text", "text"],
    build: (o, k) => keys.runnerMemory("tenant", o, k),
  },
  {
    namespace: "key:runner-evals",
    name: "runnerEvaluation",
    args: ["rid", "agent"],
    build: (r, e) => keys.runnerEvaluation(r, e),
  },
  { namespace: "consumer", name: "work", args: ["token", "token"], build: (b, c) => consumers.work(b, c) },
  {
    namespace: "subject",
    name: "channel",
    args: ["project", "token"],
    build: (p, c) => subjects.channel(p, c),
  },
  { namespace: "subject", name: "inbox", args: ["project", "agent"], build: (p, a) => subjects.inbox(p, a) },
  {
    namespace: "subject",
    name: "workOffer",
    args: ["project", "token", "token"],
    build: (p, b, c) => subjects.workOffer(p, b, c),
  },
  { namespace: "subject", name: "dlq", args: ["project", "token"], build: (p, c) => subjects.dlq(p, c) },
  {
    namespace: "subject",
    name: "agentControl",
    args: ["project", "agent"],
    build: (p, a) => subjects.agentControl(p, a),
  },
  {
    namespace: "subject",
    name: "coordinator",
    args: ["project", "token"],
    build: (p, op) => subjects.coordinator(p, op),
  },
  {
    namespace: "subject",
    name: "weftEvent",
    args: ["project", "token"],
    build: (p, k) => subjects.weftEvent(p, k),
  },
  // Keys: each bucket is its own namespace; the memory key families share the memory buckets.
  {
    namespace: "key:registry",
    name: "registry",
    args: ["project", "agent"],
    build: (p, a) => keys.registry(p, a),
  },
  {
    namespace: "key:identities",
    name: "agentIdentity",
    args: ["project", "agent"],
    build: (p, a) => keys.agentIdentity(p, a),
  },
  {
    namespace: "key:offer-journal",
    name: "offerJournal",
    args: ["project", "agent"],
    build: (p, a) => keys.offerJournal(p, a),
  },
  {
    namespace: "key:inbox-ledger",
    name: "inboxLedger",
    args: ["project", "agent"],
    build: (p, a) => keys.inboxLedger(p, a),
  },
  { namespace: "key:file-leases", name: "fileLeaseTable", args: [], build: () => keys.fileLeaseTable() },
  { namespace: "key:reminders", name: "reminders", args: ["agent"], build: (a) => keys.reminders(a) },
  {
    namespace: "key:message-acks",
    name: "messageAck",
    args: ["agent", "agent"],
    build: (a, m) => keys.messageAck(a, m),
  },
  {
    namespace: "key:memory",
    name: "memoryPrivate",
    args: ["agent", "token", "agent"],
    build: (a, c, m) => keys.memoryPrivate(a, c, m),
  },
  {
    namespace: "key:memory",
    name: "memoryTeam",
    args: ["token", "agent"],
    build: (c, m) => keys.memoryTeam(c, m),
  },
  {
    namespace: "key:memory",
    name: "memoryPersonal",
    args: ["agent", "token", "agent"],
    build: (u, c, m) => keys.memoryPersonal(u, c, m),
  },
  {
    namespace: "key:memory",
    name: "memoryPublic",
    args: ["agent", "token", "agent"],
    build: (u, c, m) => keys.memoryPublic(u, c, m),
  },
];

/** Functions that build wildcard patterns or prefixes, not names; they cannot collide by construction. */
const PATTERNS = new Set([
  "subjects.channelAll",
  "subjects.inboxAll",
  "subjects.workAll",
  "subjects.dlqAll",
  "subjects.coordinatorAll",
  "subjects.weftEventAll",
  "keys.registryPrefix",
  "keys.offerJournalPrefix",
  "keys.memoryPrivatePrefix",
  "keys.memoryTeamPrefix",
  "keys.memoryPersonalPrefix",
  "keys.memoryPublicPrefix",
  "subjects.runnerEventsAll",
  "subjects.runnerCancelAll",
  "subjects.runnerChannelAll",
  "keys.runnerUserRunsPrefix",
  "keys.runnerRunsPrefix",
  "keys.runnerQuotasPrefix",
  "keys.runnerReplicasPrefix",
  "keys.runnerEvaluationsPrefix",
]);

// Small alphabets and the names of shared things, so that near-collisions are drawn often.
const projectArb = fc.oneof(
  fc.constantFrom(
    "personal",
    "public",
    "ephemeral",
    "a-ephemeral",
    "x-ephemeral",
    "personal-ephemeral",
    "registry",
    "leases",
    "agent-ids",
    "inbox-ledger",
    "a",
    "a-a",
    "work",
    "mem",
  ),
  fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,47}$/),
  fc.stringMatching(/^a[a-]{0,5}$/),
);
const tokenArb = fc.oneof(
  fc.stringMatching(/^a[a_-]{0,4}$/),
  fc.constantFrom("chan", "inbox", "work", "events", "work_events", "default", "a_b", "b_c", "b", "c"),
  fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,63}$/),
);
const agentArb = fc.oneof(
  fc.constantFrom("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"),
  fc.stringMatching(/^[0-9a-f]{32}$/),
);
// Free-form ids (user, session, topic, memory key), including dots, wildcards and non-ASCII.
const textArb = fc.oneof(
  fc.constantFrom("a", "a.b", "a>", "*", "user-1", "user_1", "ü", "a/b"),
  fc.string({ minLength: 0, maxLength: 12 }),
);
// Run ids: 32 hex whose first 16 often repeat (two runs of one user).
const ridArb = fc.oneof(
  agentArb,
  fc.stringMatching(/^[0-9a-f]{16}$/).map((s) => `0123456789abcdef${s}`),
);
const argArb: Record<Arg, fc.Arbitrary<string>> = {
  project: projectArb,
  token: tokenArb,
  agent: agentArb,
  text: textArb,
  rid: ridArb,
};

const inputArb = fc.oneof(
  ...FAMILIES.map((family) =>
    fc.tuple(...family.args.map((a) => argArb[a])).map((args) => ({ family, args: args as string[] })),
  ),
);

/** The name, or undefined when the inputs are rejected (which must be an InvalidNameError). */
function build(family: Family, args: string[]): string | undefined {
  try {
    return family.build(...args);
  } catch (err) {
    if (err instanceof InvalidNameError) return undefined;
    throw err;
  }
}

describe("names never collide", () => {
  it("the table above covers every name function in subjects.ts", () => {
    const exported = Object.entries({ subjects, streams, consumers, buckets, keys }).flatMap(([group, fns]) =>
      Object.keys(fns).map((fn) => `${group}.${fn}`),
    );
    const groupOf: Record<string, string> = {
      bucket: "buckets",
      consumer: "consumers",
      subject: "subjects",
      stream: "streams",
    };
    const covered = new Set(
      FAMILIES.filter((f) => !f.name.startsWith("KV_")).map(
        (f) => `${f.namespace.startsWith("key:") ? "keys" : groupOf[f.namespace]}.${f.name}`,
      ),
    );
    expect(exported.filter((n) => !covered.has(n) && !PATTERNS.has(n))).toEqual([]);
  });

  it("different accepted inputs give different names in every namespace", () => {
    fc.assert(
      fc.property(fc.array(inputArb, { minLength: 2, maxLength: 60 }), (inputs) => {
        const seen = new Map<string, string>();
        for (const { family, args } of inputs) {
          const name = build(family, args);
          if (name === undefined) continue;
          const who = JSON.stringify([family.namespace, family.name, args]);
          const key = `${family.namespace}\u0000${name}`;
          const before = seen.get(key);
          if (before !== undefined && before !== who) {
            throw new Error(`${before} and ${who} both name ${family.namespace} ${name}`);
          }
          seen.set(key, who);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it("refuses the project ids that would take over a shared or another project's bucket", () => {
    expect(projectIdProblem("personal")).toMatch(/projectId "personal" is reserved: .*loom-mem-personal/);
    expect(projectIdProblem("public")).toMatch(/reserved/);
    expect(projectIdProblem("foo-ephemeral")).toMatch(
      /ends with the reserved suffix '-ephemeral'.*ephemeral memory bucket of project "foo"/,
    );
    expect(() => buckets.memory("personal")).toThrow(InvalidNameError);
    expect(() => buckets.memory("foo-ephemeral")).toThrow(/reserved suffix/);
    expect(buckets.memory("ephemeral")).toBe("loom-mem-ephemeral");
    expect(buckets.memory("personal-data")).toBe("loom-mem-personal-data");
  });

  it("gives (a_b, c) and (a, b_c) different work consumers", () => {
    expect(consumers.work("a_b", "c")).not.toBe(consumers.work("a", "b_c"));
    expect(consumers.work("default", "typescript")).toBe("work_default_typescript_7");
    const longest = consumers.work("b".repeat(64), "c".repeat(64));
    expect(longest.length).toBeLessThanOrEqual(137);
  });
});
