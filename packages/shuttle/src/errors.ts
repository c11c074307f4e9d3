import { LoominalError, type OrchestrationPhase } from "@loominal/protocol";

/** A plan that cannot be run: unknown dependency, cycle, duplicate id, empty plan. */
export class PlanError extends LoominalError {
  override name = "PlanError";
  constructor(message: string, details?: Record<string, unknown>) {
    super("invalid_input", message, details ? { details } : undefined);
  }
}

/** No orchestration with this id in the work dir (or, when NATS is up, in the project's bucket). */
export class OrchestrationNotFoundError extends LoominalError {
  override name = "OrchestrationNotFoundError";
  constructor(orchestrationId: string) {
    super(
      "not_found",
      `no orchestration ${orchestrationId} in this project; list them with shuttle_list_orchestrations or create one with shuttle_assess_task`,
      { details: { orchestrationId } },
    );
  }
}

/** A phase change the lifecycle does not allow, or an operation the current phase does not allow. */
export class InvalidTransitionError extends LoominalError {
  override name = "InvalidTransitionError";
  constructor(
    message: string,
    details: { from: OrchestrationPhase; to?: OrchestrationPhase; [k: string]: unknown },
  ) {
    super("invalid_transition", message, { details });
  }
}

/** A path that would leave the work dir (`..`, an absolute path, or a symbolic link pointing out). */
export class PathEscapeError extends LoominalError {
  override name = "PathEscapeError";
  constructor(path: string, workDir: string) {
    super(
      "forbidden",
      `${path} is outside the Shuttle work dir ${workDir} (through '..' or a symbolic link); Shuttle reads and writes only inside it`,
      { details: { path, workDir } },
    );
  }
}

/**
 * A file Shuttle was asked to read that is not a regular file (a FIFO, socket, device or directory). It is
 * never opened: a FIFO would block the reader until something writes to it.
 */
export class NotRegularFileError extends LoominalError {
  override name = "NotRegularFileError";
  constructor(path: string, kind: string) {
    super(
      "invalid_input",
      `${path} is ${kind}, not a regular file; Shuttle reads only regular files. Replace it with an ordinary file`,
      { details: { path, kind } },
    );
  }
}
