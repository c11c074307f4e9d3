import { DEFAULT_CHANNELS } from "./config.js";
import { assertAgentId, assertNameToken, assertProjectId } from "./names.js";
import { buckets, keys, streams } from "./subjects.js";

/** NATS user permissions, in the shape nats-server's configuration file takes. */
export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

export interface ProjectUser {
  user: string;
  password: string;
  projectId: string;
  /** The project's channels (default: roadmap, parallel-work, errors); each has its own stream. */
  channels?: string[];
  /** The owner of this user's `personal` memories; without it the user gets no personal memory. */
  userId?: string;
}

/** The JetStream API subjects a client needs to use one stream (create, read, consume, ack). */
function streamApi(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.STREAM.UPDATE.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.STREAM.MSG.DELETE.${stream}`,
    `$JS.API.STREAM.PURGE.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.API.CONSUMER.NAMES.${stream}`,
    `$JS.API.CONSUMER.LIST.${stream}`,
    `$JS.ACK.${stream}.>`,
  ];
}

const kvStream = (bucket: string) => `KV_${bucket}`;

/**
 * Permissions that confine a NATS user to one project: its subjects, its streams and buckets, and only its
 * own keys in the shared buckets it writes. What this cannot confine on nats-server 2.9 is reading the
 * shared buckets (registry, personal, public), because a 2.9 consumer-create request does not carry its
 * filter in the subject; see docs/security.md.
 */
export function projectPermissions(u: ProjectUser): NatsPermissions {
  const p = assertProjectId(u.projectId);
  const channels = (u.channels ?? DEFAULT_CHANNELS.map((c) => c.name)).map((c) =>
    assertNameToken(c, "channel"),
  );
  const projectStreams = [
    ...channels.map((c) => streams.channel(p, c)),
    streams.inbox(p),
    streams.work(p),
    streams.dlq(p),
    streams.weftEvents(p),
  ];
  const projectBuckets = [
    buckets.workLedger(p),
    buckets.memory(p),
    buckets.memoryEphemeral(p),
    buckets.shuttle(p),
    buckets.targets(p),
    buckets.spinUps(p),
  ];
  const sharedBuckets = [
    buckets.registry(),
    buckets.agentIdentities(),
    buckets.inboxLedger(),
    buckets.offerJournal(),
    buckets.memoryPublic(),
    buckets.leases(),
    buckets.boundaries(),
    ...(u.userId ? [buckets.memoryPersonal()] : []),
  ];
  const keyPrefix = keys.registryPrefix(p).slice(0, -2);
  const publish = [
    "$JS.API.INFO",
    `loom.${p}.>`,
    `coord.${p}.>`,
    "_INBOX.>",
    ...projectStreams.flatMap(streamApi),
    ...projectBuckets.flatMap((b) => [...streamApi(kvStream(b)), `$KV.${b}.>`]),
    ...sharedBuckets.flatMap((b) => streamApi(kvStream(b))),
    // Writes to shared buckets only under this project's (or this user's) keys.
    `$KV.${buckets.registry()}.${keyPrefix}.>`,
    `$KV.${buckets.agentIdentities()}.${keyPrefix}.>`,
    `$KV.${buckets.inboxLedger()}.${keyPrefix}.>`,
    `$KV.${buckets.offerJournal()}.${keyPrefix}.>`,
    `$KV.${buckets.leases()}.${keyPrefix}.>`,
    `$KV.${buckets.memoryPublic()}.>`,
    ...(u.userId ? [`$KV.${buckets.memoryPersonal()}.u.${assertAgentId(u.userId)}.>`] : []),
  ];
  const subscribe = ["_INBOX.>", `loom.${p}.>`, `coord.${p}.>`];
  return { publish: { allow: publish }, subscribe: { allow: subscribe } };
}

/**
 * A complete nats-server configuration (JSON, which nats-server reads as its config syntax) with JetStream
 * and one account holding a user per entry, each confined to its project.
 */
export function natsServerConfig(options: {
  users: ProjectUser[];
  storeDir: string;
  listen?: string;
}): string {
  const config = {
    ...(options.listen ? { listen: options.listen } : {}),
    jetstream: { store_dir: options.storeDir },
    accounts: {
      LOOMINAL: {
        jetstream: "enabled",
        users: options.users.map((u) => ({
          user: u.user,
          password: u.password,
          permissions: projectPermissions(u),
        })),
      },
    },
  };
  return JSON.stringify(config, null, 2);
}
