export {
  type BucketRole,
  keyProblem,
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
  SymlinkRefusedError,
  WrongMemoryKindError,
} from "./errors.js";
export {
  cleanupInputSchema,
  contentSchema,
  exportInputSchema,
  forgetOptionsSchema,
  importInputSchema,
  listInputSchema,
  memoryIdsInputSchema,
  parseInput,
  type RememberInput,
  recallContextInputSchema,
  relatedToSchema,
  rememberBulkInputSchema,
  rememberInputSchema,
  scopesInputSchema,
  searchInputSchema,
  shareOptionsSchema,
  tagsSchema,
} from "./inputs.js";
export type { PatternToolDeps } from "./mcp/deps.js";
export {
  createPatternServer,
  PATTERN_CORE_TOOLS,
  PATTERN_GATEWAY_TOOL,
  PATTERN_SERVER_NAME,
  PATTERN_VERSION,
  type PatternServerOptions,
} from "./mcp/server.js";
export { patternTools } from "./mcp/tools/index.js";
export type { Memory, RecalledMemory, RecallResult, SearchHit } from "./recall.js";
export { detectSecrets } from "./secrets.js";
export {
  BULK_MAX,
  type BucketHealth,
  type BulkOutcome,
  type CleanupOptions,
  type CleanupResult,
  DEFAULT_MAX_PUBLIC_MEMORIES,
  type ForgetResult,
  type ImportSummary,
  MemoryStore,
  type MemoryStoreOptions,
  maxPublicMemoriesFromEnv,
  patternProvisionSpecs,
  type RecallContextOptions,
  type StoreHealth,
  type ViewHealth,
  type WriteResult,
} from "./store.js";
export {
  EXPORT_PROTECTED_NAMES,
  type ExportOptions,
  type ExportResult,
  exportMemories,
  exportPathInside,
  IMPORT_MAX_BYTES,
  type ImportOptions,
  importMemories,
  importPathInside,
} from "./transfer.js";
