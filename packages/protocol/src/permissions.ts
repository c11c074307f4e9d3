import { DEFAULT_CHANNELS } from "./config.js";
import { ConfigError } from "./errors.js";
import { assertAgentId, assertNameToken, assertProjectId } from "./names.js";
import { buckets, keys, streams } from "./subjects.js";

/** NATS user permissions, in the shape nats-server's configuration file takes. */
export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /**
   * Lets the user answer requests it received (one reply each, to the reply subject the request carried),
   * so responders need no publish right on anyone's inbox.
   */
  allow_responses: boolean;
}

export interface ProjectUser {
  user: string;
  password: string;
  projectId: string;
  /** The project's channels (default: roadmap, parallel-work, errors); each has its own stream. */
  channels?: string[];
  /**
   * The person behind this user (`LOOMINAL_USER_ID`). It owns `u.<userId>.…` in personal memory and
   * `p.<userId>.…` in public memory; without it the user has no personal memory and may read public
   * memory but not write it.
   */
  userId?: string;
}

/** A user with every right: it provisions streams and buckets (`loominal nats-provision`) and runs services. */
export interface AdminUser {
  user: string;
  password: string;
}

/**
 * The inbox prefix of a NATS user: its replies (request/reply, JetStream API answers, consumer
 * deliveries) go to `<prefix>.…`, which only that user may subscribe to. Clients read it from
 * `NATS_INBOX_PREFIX`, or derive it from `NATS_USER` with this same function.
 */
export function inboxPrefixFor(user: string): string {
  return `_INBOX_${assertNameToken(user, "name")}`;
}

const kvStream = (bucket: string) => `KV_${bucket}`;

/**
 * What a user may do with a stream of its own project: look at it, read it, consume it and ack; no
 * create, update, delete or purge (streams are provisioned by an operator, `loominal nats-provision`).
 */
function ownStreamApi(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.*`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.API.CONSUMER.NAMES.${stream}`,
    `$JS.API.CONSUMER.LIST.${stream}`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/**
 * Reading a shared bucket only under some key prefixes: a direct get whose key is in the request
 * subject (nats.js puts it there), and consumers whose filter subject is in the create subject (the
 * server refuses a request whose body filters something else). No `STREAM.MSG.GET`, which would read
 * any key, and no consumer listing (so the random names of others' consumers stay unknown).
 */
function sharedBucketRead(bucket: string, prefixes: string[]): string[] {
  const stream = kvStream(bucket);
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    ...prefixes.flatMap((prefix) => [
      `$JS.API.DIRECT.GET.${stream}.$KV.${bucket}.${prefix}`,
      `$JS.API.CONSUMER.CREATE.${stream}.*.$KV.${bucket}.${prefix}`,
    ]),
  ];
}

/** The per-project streams of the layout: every `streams.*` name that is a function of the projectId alone. */
export function projectStreamNames(projectId: string, channels: string[]): string[] {
  const p = assertProjectId(projectId);
  const perProject = Object.values(streams as Record<string, (...a: string[]) => string>)
    .filter((f) => f.length === 1)
    .map((f) => f(p));
  return [...channels.map((c) => streams.channel(p, c)), ...perProject];
}

/** The per-project buckets of the layout: every `buckets.*` name that is a function of the projectId alone. */
export function projectBucketNames(projectId: string): string[] {
  const p = assertProjectId(projectId);
  return Object.values(buckets as Record<string, (...a: string[]) => string>)
    .filter((f) => f.length === 1)
    .map((f) => f(p));
}

/**
 * Permissions that confine a NATS user to one project, enforced by the server:
 * - its own subjects `loom.<p>.>` and `coord.<p>.>`, plus publish-only on every project's direct-message
 *   subjects `loom.*.inbox.*` (cross-project direct messages);
 * - replies only under its own inbox prefix (`inboxPrefixFor`), answers to requests by `allow_responses`;
 * - its project's streams and buckets (every per-project name of the layout): read, consume, write keys;
 *   no stream administration (create, update, delete, purge) anywhere, and message delete only in its
 *   own dead-letter stream;
 * - in the shared buckets, reads and writes only under its own keys: registry (reads all, writes
 *   `<p>.…`), agent identities and inbox read-ledger (`<p>.…`), leases (`<p>.…`), personal memory
 *   (`u.<userId>.…`), public memory (reads all, writes `p.<userId>.…`), boundary policies (reads all).
 * Shared buckets not named here (the Runner's, a coordinator's) need a service or admin user.
 */
export function projectPermissions(u: ProjectUser): NatsPermissions {
  const p = assertProjectId(u.projectId);
  const channels = (u.channels ?? DEFAULT_CHANNELS.map((c) => c.name)).map((c) =>
    assertNameToken(c, "channel"),
  );
  const userId = u.userId !== undefined ? assertAgentId(u.userId) : undefined;
  const projectKeys = keys.registryPrefix(p);
  const registry = buckets.registry();
  const identities = buckets.agentIdentities();
  const inboxLedger = buckets.inboxLedger();
  const leases = buckets.leases();
  const offerJournal = buckets.offerJournal();
  const personal = buckets.memoryPersonal();
  const publicMemory = buckets.memoryPublic();
  const boundaryPolicies = buckets.boundaries();
  // The coordinator's own state: spin-up targets hold commands it runs, so agents get no access to them.
  const serviceOnly = new Set([buckets.targets(p), buckets.spinUps(p)]);

  const publish = [
    "$JS.API.INFO",
    `loom.${p}.>`,
    `coord.${p}.>`,
    // Direct messages to agents of other projects: publish only, never subscribe.
    "loom.*.inbox.*",
    ...projectStreamNames(p, channels).flatMap(ownStreamApi),
    `$JS.API.STREAM.MSG.DELETE.${streams.dlq(p)}`,
    // Work maintenance deletes finished items past their retention, and the storage reserve, by sequence.
    `$JS.API.STREAM.MSG.DELETE.${kvStream(buckets.workLedger(p))}`,
    ...projectBucketNames(p)
      .filter((b) => !serviceOnly.has(b))
      .flatMap((b) => [...ownStreamApi(kvStream(b)), `$KV.${b}.>`]),
    ...sharedBucketRead(registry, [">"]),
    `$KV.${registry}.${projectKeys}`,
    ...sharedBucketRead(identities, [projectKeys]),
    `$KV.${identities}.${projectKeys}`,
    ...sharedBucketRead(inboxLedger, [projectKeys]),
    `$KV.${inboxLedger}.${projectKeys}`,
    ...sharedBucketRead(offerJournal, [projectKeys]),
    `$KV.${offerJournal}.${projectKeys}`,
    ...sharedBucketRead(leases, [projectKeys]),
    `$KV.${leases}.${projectKeys}`,
    ...sharedBucketRead(publicMemory, [">"]),
    // Routing policy per boundary: written by the coordinator (a service user), read by every claimer.
    ...sharedBucketRead(boundaryPolicies, [">"]),
    ...(userId
      ? [
          `$KV.${publicMemory}.${keys.memoryPublicPrefix(userId)}`,
          ...sharedBucketRead(personal, [keys.memoryPersonalPrefix(userId)]),
          `$KV.${personal}.${keys.memoryPersonalPrefix(userId)}`,
        ]
      : []),
  ];
  const subscribe = [`loom.${p}.>`, `coord.${p}.>`, `${inboxPrefixFor(u.user)}.>`];
  return { publish: { allow: publish }, subscribe: { allow: subscribe }, allow_responses: true };
}

/**
 * A complete nats-server configuration (JSON, which nats-server reads as its config syntax) with JetStream
 * and one account holding a user per entry, each confined to its project, and optionally an admin user
 * that provisions streams and buckets.
 */
export function natsServerConfig(options: {
  users: ProjectUser[];
  admin?: AdminUser;
  storeDir: string;
  listen?: string;
}): string {
  const names = new Set<string>();
  for (const u of [...options.users, ...(options.admin ? [options.admin] : [])]) {
    if (names.has(u.user))
      throw new ConfigError(`NATS user ${u.user} is given twice; user names must differ`);
    names.add(u.user);
  }
  const config = {
    ...(options.listen ? { listen: options.listen } : {}),
    jetstream: { store_dir: options.storeDir },
    accounts: {
      LOOMINAL: {
        jetstream: "enabled",
        users: [
          ...(options.admin
            ? [{ user: assertNameToken(options.admin.user, "name"), password: options.admin.password }]
            : []),
          ...options.users.map((u) => ({
            user: assertNameToken(u.user, "name"),
            password: u.password,
            permissions: projectPermissions(u),
          })),
        ],
      },
    },
  };
  return JSON.stringify(config, null, 2);
}
