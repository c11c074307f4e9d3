export {
  bucketName,
  type CasMutation,
  type CasOptions,
  type CasResult,
  casUpdate,
  entryValue,
  forgetRevision,
  isCasConflict,
  JS_WRONG_LAST_SEQUENCE,
} from "./cas.js";
export { decodeText, encodeJson, type JsonCodec, jsonCodec } from "./codec.js";
export {
  DEFAULT_NATS_URL,
  type Env,
  type LoominalConfig,
  loadConfig,
  type NatsSettings,
  natsSettingsFromEnv,
  PROJECT_FILE,
  readProjectFile,
  redactUrl,
} from "./config.js";
export { Fabric, type FabricOptions, type FabricState, isUnavailableError } from "./connection.js";
export {
  CasConflictError,
  type ConfigDifference,
  ConfigMismatchError,
  InvalidMessageError,
  LeaseHeldError,
  NatsUnavailableError,
  UnsupportedServerError,
} from "./errors.js";
export {
  featuresOf,
  parseServerVersion,
  type ServerFeatures,
  type ServerVersion,
  versionAtLeast,
} from "./features.js";
export { Lease, type LeaseOptions, type LeaseRecord, leaseBucket } from "./lease.js";
export { createLogger, type Logger, type LoggerSettings, REDACT_PATHS, silentLogger } from "./logger.js";
export {
  type BucketSpec,
  ensureBucket,
  ensureStream,
  type MismatchPolicy,
  type StreamSpec,
  streamDifferences,
  streamInfo,
} from "./streams.js";
