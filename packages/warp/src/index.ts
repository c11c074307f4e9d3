export {
  ACK_STATUS_DEFAULT_LIMIT,
  ACK_STATUS_MAX_LIMIT,
  type AckStatus,
  type AckStatusPage,
  MessageAcks,
  messageAcksBucketSpec,
} from "./acks.js";
export {
  CHANNEL_READ_DEFAULT_LIMIT,
  CHANNEL_READ_MAX_LIMIT,
  type ChannelInfo,
  type ChannelPage,
  type ChannelStatus,
  Channels,
  type ChannelsOptions,
  channelStreamSpec,
  type ReadChannelMessage,
  type SentChannelMessage,
  THREAD_SCAN_MAX,
} from "./channels.js";
export { AgentNotFoundError, IdentityInUseError, NotRegisteredError, UnknownChannelError } from "./errors.js";
export {
  HOOK_EVENTS,
  HOOK_PROTOCOL_VERSION,
  type HookAnswer,
  type HookEvent,
  type HookReply,
  type HookRequest,
  hookSocketPath,
  hookTcpFilePath,
} from "./hook/protocol.js";
export {
  HOOK_CONNECT_MS,
  type HookInput,
  type HookReminderOptions,
  hookInputSchema,
  hookOutput,
  hookReminders,
  natsUnreachableAnswer,
  parseHookEvent,
  parseHookInput,
  type Reminders,
  reminderText,
} from "./hook/reminders.js";
export { HookSocketServer } from "./hook/server.js";
export {
  IDENTITY_LEASE_TTL_MS,
  Identity,
  type IdentityOptions,
  MAX_INSTANCES,
  processAlive,
} from "./identity.js";
export {
  DIRECT_READ_DEFAULT_LIMIT,
  DIRECT_READ_MAX_LIMIT,
  type DirectReadFilter,
  type DirectReadResult,
  Inbox,
  type InboxOptions,
  type InboxSettings,
  inboxStreamSpec,
  type ReadDirectMessage,
  type SentDirectMessage,
} from "./inbox.js";
export {
  type AcquireInput,
  type AcquireResult,
  FileLeases,
  type FileLeasesOptions,
  fileLeaseBucketSpec,
  HolderCheck,
  type LeaseConflict,
  type LeaseHolder,
  leaseConflictsFor,
  liveFileLeases,
  readLeaseTable,
} from "./leases/file-leases.js";
export {
  alternatives as leasePathAlternatives,
  leasePathMatches,
  leasePathsOverlap,
  normaliseLeasePath,
} from "./leases/globs.js";
export { warpProvisionSpecs } from "./provision.js";
export {
  type AgentView,
  DISCOVER_DEFAULT_LIMIT,
  DISCOVER_MAX_LIMIT,
  type DiscoverFilter,
  type DiscoverPage,
  type Holdings,
  type PresenceUpdate,
  REGISTRY_BUCKET,
  type RegisterInput,
  Registry,
  type RegistryOptions,
  registryEntry,
} from "./registry.js";
export type { ThreadOptions } from "./threads.js";
export { DEFAULT_READY_TIMEOUT_MS, Warp, type WarpOpenOptions } from "./warp.js";
export * from "./work/index.js";
