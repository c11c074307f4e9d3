/** NATS types and constants the libraries use, so that only the fabric imports the NATS client. */
export {
  AckPolicy,
  type Consumer,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamInfo,
  type StreamState,
} from "@nats-io/jetstream";
export type { KV, KvEntry } from "@nats-io/kv";
export {
  AgentInstance,
  type AgentInstanceOptions,
  defaultLockDir,
  IDENTITY_LEASE_TTL_MS,
  IdentityInUseError,
  identityClaimHolder,
  identityHolder,
  identityHolderGone,
  MAX_INSTANCES,
} from "./agent-instance.js";
export {
  bucketName,
  CAS_KNOWN_KEYS_MAX,
  type CasMutation,
  type CasOptions,
  type CasResult,
  casCacheStats,
  casUpdate,
  entryValue,
  forgetRevision,
  isCasConflict,
  JS_WRONG_LAST_SEQUENCE,
  rememberRevision,
} from "./cas.js";
export { decodeText, encodeJson, type JsonCodec, jsonCodec } from "./codec.js";
export {
  DEFAULT_NATS_URL,
  type Env,
  type LoominalConfig,
  loadConfig,
  type NatsSettings,
  type NatsUrlSource,
  natsSettingsFromEnv,
  PROJECT_FILE,
  readProjectFile,
  redactUrl,
} from "./config.js";
export {
  Fabric,
  type FabricOptions,
  type FabricState,
  OUTAGE_GRACE_MS,
} from "./connection.js";
export { type EnvTable, type EnvValues, type EnvVarSpec, envTableMarkdown, parseEnv } from "./env.js";
export {
  CasConflictError,
  type ConfigDifference,
  ConfigMismatchError,
  InvalidMessageError,
  isAuthError,
  isPermissionViolation,
  isStorageFullError,
  isUnavailableError,
  JS_INSUFFICIENT_RESOURCES,
  LeaseHeldError,
  NatsAuthError,
  NatsPermissionError,
  NatsUnavailableError,
  NotProvisionedError,
  StorageFullError,
  UnsupportedServerError,
} from "./errors.js";
export {
  FEATURE_MIN_VERSION,
  featuresOf,
  parseServerVersion,
  requireFeature,
  type ServerFeature,
  type ServerFeatures,
  type ServerVersion,
  versionAtLeast,
} from "./features.js";
export {
  ancestorPids,
  findNatsServer,
  hostBootId,
  natsServerVersionOf,
  processAlive,
  processCommandLine,
  processStartTime,
  requireNatsServer,
} from "./host.js";
export { BodyTooLargeError, readBodyLimited } from "./http-body.js";
export {
  closeHttpServer,
  createHttpServer,
  HTTP_HEADERS_TIMEOUT_MS,
  HTTP_KEEP_ALIVE_TIMEOUT_MS,
} from "./http-server.js";
export { Lease, type LeaseOptions, type LeaseRecord, leaseBucket, leaseBucketSpec } from "./lease.js";
export {
  createLogger,
  LOG_LEVELS,
  type Logger,
  type LoggerSettings,
  type LogLevel,
  loggerOptions,
  logLevelFrom,
  REDACT_PATHS,
  redactLogObject,
  SECRET_KEYS,
  silentLogger,
} from "./logger.js";
export { LruMap } from "./lru.js";
export {
  createReadConsumer,
  dropConsumer,
  type PulledMessage,
  type PullResult,
  parseAckSubject,
  pull,
  pullBatch,
  pullStats,
  type ReadAllOptions,
  type ReadConsumer,
  type ReadConsumerOptions,
  type ReadStart,
  readAll,
} from "./pull.js";
export { KeyedSerialQueue } from "./serial.js";
export { sessionWarpLock } from "./session-lock.js";
export { GracefulShutdown, type GracefulShutdownOptions } from "./shutdown.js";
export {
  type BucketSpec,
  bucketKeys,
  consumerInfo,
  ensureBucket,
  ensureStream,
  forgetBucket,
  forgetStream,
  isConsumerMissing,
  JS_CONSUMER_NOT_FOUND,
  JS_STREAM_NOT_FOUND,
  type MismatchPolicy,
  mayMeanStreamMissing,
  type ProvisionResult,
  provision,
  type StreamSpec,
  streamDifferences,
  streamInfo,
  streamVanished,
  withBucket,
  withStream,
} from "./streams.js";
export {
  type BucketChange,
  type BucketWatch,
  type BucketWatchOptions,
  watchBucket,
} from "./watch.js";
