import type { Logger } from "@loominal/fabric";
import type { OrchestrationRecord, SubtaskState, SubtaskStatus } from "@loominal/protocol";
import { NotRegularFileError, PathEscapeError } from "./errors.js";
import type { FileRead, WorkDir } from "./paths.js";

/** Bytes of an output file returned by `results()`; the rest is reported as truncated. */
export const OUTPUT_READ_LIMIT = 256 * 1024;

export interface SubtaskResult {
  id: string;
  title: string;
  status: SubtaskStatus;
  wave: number;
  workId: string | undefined;
  claims: number;
  claimedBy: string | undefined;
  result: unknown;
  error: string | undefined;
  outputPath: string;
  output: FileRead | undefined;
  /** Why an output file that exists was not read (not a regular file, or a link leading out). */
  outputProblem: string | undefined;
}

export interface ResultsView {
  record: OrchestrationRecord;
  subtasks: SubtaskResult[];
  /** Subtasks without a readable output file, with their status and, when the file exists, why. */
  missingOutputs: Array<{ id: string; status: SubtaskStatus; reason?: string }>;
}

export interface OutputRead {
  file?: FileRead;
  problem?: string;
}

/**
 * A subtask's output file. One that is a link leading out of the work dir, or not a regular file (a
 * FIFO would block the read forever), is not read: it counts as missing, with the reason.
 */
export async function readOutput(
  workDir: WorkDir,
  logger: Logger,
  record: OrchestrationRecord,
  s: SubtaskState,
): Promise<OutputRead> {
  try {
    const file = await workDir.readFile(
      workDir.path(record.orchestrationId, s.outputFile),
      OUTPUT_READ_LIMIT,
    );
    return file ? { file } : {};
  } catch (err) {
    if (!(err instanceof PathEscapeError) && !(err instanceof NotRegularFileError)) throw err;
    logger.warn({ orchestrationId: record.orchestrationId, subtaskId: s.id }, err.message);
    return { problem: err.message };
  }
}

/**
 * Each subtask's status, result and output file, and the subtasks without a readable output. The files
 * are read only for an orchestration in this process's work dir (`local`).
 */
export async function resultsView(
  workDir: WorkDir,
  logger: Logger,
  record: OrchestrationRecord,
  local: boolean,
): Promise<ResultsView> {
  const subtasks: SubtaskResult[] = [];
  for (const s of record.subtasks) {
    const outputPath = local
      ? workDir.path(record.orchestrationId, s.outputFile)
      : `${record.directory}/${s.outputFile}`;
    const read: OutputRead = local ? await readOutput(workDir, logger, record, s) : {};
    subtasks.push({
      id: s.id,
      title: s.title,
      status: s.status,
      wave: s.wave,
      workId: s.workId,
      claims: s.claims,
      claimedBy: s.claimedBy,
      result: s.result,
      error: s.error,
      outputPath,
      output: read.file,
      outputProblem: read.problem,
    });
  }
  const missingOutputs = subtasks
    .filter((s) => s.output === undefined)
    .map((s) => ({ id: s.id, status: s.status, ...(s.outputProblem ? { reason: s.outputProblem } : {}) }));
  return { record, subtasks, missingOutputs };
}
