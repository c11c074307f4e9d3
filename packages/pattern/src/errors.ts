import { LoominalError } from "@loominal/protocol";

/** A memory id that names nothing the caller may see (or that expired). */
export class MemoryNotFoundError extends LoominalError {
  override name = "MemoryNotFoundError";
  constructor(memoryId: string, what = "memory") {
    super(
      "not_found",
      `no ${what} ${memoryId} visible to this agent (it may have expired, been forgotten, or belong to another agent); use pattern_recall_context or pattern_search to find current ids`,
      { details: { memoryId } },
    );
  }
}

/** The caller may read the memory but not change or forget it. */
export class NotAuthorError extends LoominalError {
  override name = "NotAuthorError";
  constructor(memoryId: string, scope: string) {
    super(
      "forbidden",
      `memory ${memoryId} is a ${scope} memory written by another agent; only its author may change or forget it`,
      { details: { memoryId, scope } },
    );
  }
}

/** Forgetting a core memory needs `force: true`. */
export class ForceRequiredError extends LoominalError {
  override name = "ForceRequiredError";
  constructor(memoryId: string) {
    super(
      "forbidden",
      `memory ${memoryId} is a core memory; core memories follow you into every project, so forgetting one needs force: true`,
      { details: { memoryId } },
    );
  }
}

/** The operation does not apply to a memory of this scope/category. */
export class WrongMemoryKindError extends LoominalError {
  override name = "WrongMemoryKindError";
  constructor(memoryId: string, message: string) {
    super("invalid_transition", message, { details: { memoryId } });
  }
}

/** The caller already has as many core memories as allowed. */
export class CoreMemoryLimitError extends LoominalError {
  override name = "CoreMemoryLimitError";
  constructor(count: number, limit: number) {
    super(
      "conflict",
      `you already have ${count} core memories (limit ${limit}); forget one with pattern_forget {memoryId, force: true} or raise pattern.maxCoreMemories in .loominal.json`,
      { details: { count, limit } },
    );
  }
}

/** A scope/category pair, tag, path or similar argument that cannot be used. */
export class InvalidMemoryInputError extends LoominalError {
  override name = "InvalidMemoryInputError";
  constructor(message: string, details?: Record<string, unknown>) {
    super("invalid_input", message, details ? { details } : undefined);
  }
}

/** Export and import read and write only inside the project directory. */
export class PathOutsideProjectError extends LoominalError {
  override name = "PathOutsideProjectError";
  constructor(path: string, projectDir: string) {
    super(
      "forbidden",
      `path ${path} is outside the project directory ${projectDir}; use a path inside it (relative paths are taken from the project directory)`,
      { details: { path } },
    );
  }
}

/** Export never writes to or through a symbolic link at the file itself, wherever it points. */
export class SymlinkRefusedError extends LoominalError {
  override name = "SymlinkRefusedError";
  constructor(path: string) {
    super(
      "forbidden",
      `path ${path} is a symbolic link; export never writes through links, choose another path`,
      { details: { path } },
    );
  }
}
