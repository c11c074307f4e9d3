export {
  type BucketRole,
  locationOf,
  type MemoryIdentity,
  type MemoryLocation,
  readableSlices,
  recallRank,
  resolveScopeCategory,
} from "./categories.js";
export {
  CoreMemoryLimitError,
  ForceRequiredError,
  InvalidMemoryInputError,
  MemoryNotFoundError,
  NotAuthorError,
  PathOutsideProjectError,
  WrongMemoryKindError,
} from "./errors.js";
export {
  contentSchema,
  parseInput,
  type RememberInput,
  relatedToSchema,
  rememberInputSchema,
  tagsSchema,
} from "./inputs.js";
export type { PatternToolDeps } from "./mcp/deps.js";
export { createPatternServer, PATTERN_SERVER_NAME, PATTERN_VERSION } from "./mcp/server.js";
export { patternTools } from "./mcp/tools/index.js";
export type { Memory, RecallResult, SearchHit } from "./recall.js";
export { detectSecrets } from "./secrets.js";
export {
  BULK_MAX,
  type BucketHealth,
  type BulkOutcome,
  type CleanupOptions,
  type CleanupResult,
  type ForgetResult,
  type ImportSummary,
  MemoryStore,
  type MemoryStoreOptions,
  type RecallContextOptions,
  type StoreHealth,
  type WriteResult,
} from "./store.js";
export {
  type ExportOptions,
  type ExportResult,
  exportMemories,
  exportPathInside,
  IMPORT_MAX_BYTES,
  type ImportOptions,
  importMemories,
  importPathInside,
} from "./transfer.js";
