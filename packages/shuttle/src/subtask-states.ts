/**
 * What happens to an orchestration record as its work moves: pure functions of a record (and a work
 * item's ledger state), with no I/O, used by the Shuttle orchestrator inside its serialised mutations.
 */
import type {
  OrchestrationCheckpoint,
  OrchestrationPhase,
  OrchestrationRecord,
  SubtaskState,
  SubtaskStatus,
  WorkItem,
} from "@loominal/protocol";
import { clip } from "./store.js";

/** Bytes of JSON of workers' results kept in a record altogether; each subtask gets an equal share. */
const RESULTS_BUDGET_BYTES = 256 * 1024;
/** Bounds of one subtask's share of RESULTS_BUDGET_BYTES. */
const RESULT_KEEP_MAX_BYTES = 16 * 1024;
const RESULT_KEEP_MIN_BYTES = 1024;
/** Characters of a worker's error or progress note kept per subtask. */
export const TEXT_KEEP_CHARS = 1_000;
/** Checkpoints kept in a record; older ones are dropped and counted in the first entry. */
export const CHECKPOINTS_KEPT = 100;

export interface OrchestrationSummary {
  orchestrationId: string;
  task: string;
  phase: OrchestrationPhase;
  createdAt: string;
  updatedAt: string;
  subtasks: number;
  completed: number;
  /** Subtasks whose work failed. */
  failed: number;
  /** Subtasks that will not run because a dependency did not complete. */
  blocked: number;
  outstanding: number;
  /** Whether the orchestration's directory is in this process's work dir. */
  local: boolean;
}

export const OUTSTANDING: readonly SubtaskStatus[] = ["waiting", "offered", "claimed"];

export function now(): string {
  return new Date().toISOString();
}

export function subtaskDir(id: string): string[] {
  return ["subtasks", id];
}

export function replaceSubtasks(record: OrchestrationRecord, changed: SubtaskState[]): OrchestrationRecord {
  if (changed.length === 0) return record;
  const byId = new Map(changed.map((s) => [s.id, s]));
  return { ...record, subtasks: record.subtasks.map((s) => byId.get(s.id) ?? s) };
}

const DROPPED_MARKER_RE = /^\[shuttle\] (\d+) earlier checkpoints? (?:was|were) dropped/;

/**
 * `checkpoints` with `entry` appended, at most `keep` long: beyond that the oldest are dropped and the
 * first entry becomes a marker counting every checkpoint dropped so far.
 */
export function appendCheckpoint(
  checkpoints: readonly OrchestrationCheckpoint[],
  entry: OrchestrationCheckpoint,
  keep = CHECKPOINTS_KEPT,
): OrchestrationCheckpoint[] {
  const all = [...checkpoints, entry];
  if (all.length <= keep) return all;
  const markerCount = Number(DROPPED_MARKER_RE.exec(all[0]?.note ?? "")?.[1] ?? 0);
  const body = markerCount > 0 ? all.slice(1) : all;
  const excess = body.length - (keep - 1);
  const dropped = body.slice(0, excess);
  const last = dropped.at(-1) ?? entry;
  const total = markerCount + dropped.length;
  return [
    {
      at: last.at,
      phase: last.phase,
      note: `[shuttle] ${total} earlier checkpoint${total === 1 ? " was" : "s were"} dropped; the record keeps the newest ${keep - 1}`,
    },
    ...body.slice(excess),
  ];
}

/** Blocks waiting subtasks with a failed dependency (directly or not); unblocks those without one. */
export function settleBlocked(record: OrchestrationRecord): OrchestrationRecord {
  const byId = new Map(record.subtasks.map((s) => [s.id, s]));
  const at = now();
  const changed: SubtaskState[] = [];
  // Plan order is a topological order only within waves, so walk the waves.
  for (const wave of record.waves) {
    for (const id of wave) {
      const s = byId.get(id);
      if (!s || (s.status !== "waiting" && s.status !== "blocked")) continue;
      const badDep = s.dependsOn.find((d) => {
        const st = byId.get(d)?.status;
        return st === "failed" || st === "cancelled" || st === "blocked";
      });
      let next: SubtaskState | undefined;
      if (badDep && s.status !== "blocked")
        next = { ...s, status: "blocked", error: `dependency ${badDep} did not complete`, updatedAt: at };
      else if (!badDep && s.status === "blocked")
        next = { ...s, status: "waiting", error: undefined, updatedAt: at };
      if (next) {
        byId.set(id, next);
        changed.push(next);
      }
    }
  }
  return replaceSubtasks(record, changed);
}

/**
 * Applies a ledger state of a subtask's work item (the caller decided it is newer than the applied one).
 * Returns the record itself when nothing changes, so an unchanged state is not saved again.
 */
export function applyWorkItem(
  record: OrchestrationRecord,
  subtaskId: string,
  item: WorkItem,
): OrchestrationRecord {
  const at = now();
  const s = record.subtasks.find((x) => x.id === subtaskId);
  if (!s || s.workId !== item.workId) return record;
  const base: SubtaskState = {
    ...s,
    workUpdatedAt: item.updatedAt,
    claims: Math.max(s.claims, item.attempts),
    ...(item.claim ? { claimedBy: item.claim.agentId } : {}),
    ...(item.claim?.progressNote ? { lastNote: clip(item.claim.progressNote, TEXT_KEEP_CHARS) } : {}),
  };
  let next: SubtaskState;
  switch (item.status) {
    case "pending":
      next = {
        ...base,
        status: "offered",
        offeredAt: s.offeredAt ?? at,
        ...(item.lastError
          ? { error: clip(`attempt ${item.lastError.attempt}: ${item.lastError.reason}`, TEXT_KEEP_CHARS) }
          : {}),
      };
      break;
    case "claimed":
      next = { ...base, status: "claimed", offeredAt: s.offeredAt ?? at };
      break;
    case "completed":
      next = {
        ...base,
        status: "completed",
        error: undefined,
        result: keepResult(item.result, record.subtasks.length, item.workId),
        finishedAt: s.status === "completed" && s.finishedAt ? s.finishedAt : (item.finishedAt ?? at),
        ...(item.completedBy ? { claimedBy: item.completedBy } : {}),
      };
      break;
    case "dead":
      next = {
        ...base,
        status: "failed",
        error: clip(item.dead?.reason ?? item.lastError?.reason ?? "the work item died", TEXT_KEEP_CHARS),
        finishedAt: item.dead?.at ?? at,
      };
      break;
    case "cancelled":
    case "discarded":
      next = {
        ...base,
        status: "cancelled",
        error: clip(item.cancelReason ?? `work item ${item.status}`, TEXT_KEEP_CHARS),
        finishedAt: item.finishedAt ?? at,
      };
      break;
    default:
      return record;
  }
  if (sameSubtask(s, next)) return record;
  return replaceSubtasks(record, [{ ...next, updatedAt: at }]);
}

/** Every outstanding subtask cancelled with `reason`. */
export function finishOutstanding(record: OrchestrationRecord, reason: string): OrchestrationRecord {
  const at = now();
  return {
    ...record,
    subtasks: record.subtasks.map((s) =>
      OUTSTANDING.includes(s.status)
        ? { ...s, status: "cancelled", error: clip(reason, TEXT_KEEP_CHARS), finishedAt: at, updatedAt: at }
        : s,
    ),
  };
}

export function summarize(record: OrchestrationRecord): Omit<OrchestrationSummary, "local"> {
  const count = (pred: (s: SubtaskState) => boolean) => record.subtasks.filter(pred).length;
  return {
    orchestrationId: record.orchestrationId,
    task: record.task.length > 200 ? `${record.task.slice(0, 200)}…` : record.task,
    phase: record.phase,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    subtasks: record.subtasks.length,
    completed: count((s) => s.status === "completed"),
    failed: count((s) => s.status === "failed"),
    blocked: count((s) => s.status === "blocked"),
    outstanding: count((s) => OUTSTANDING.includes(s.status)),
  };
}

function sameSubtask(a: SubtaskState, b: SubtaskState): boolean {
  return JSON.stringify({ ...a, updatedAt: "" }) === JSON.stringify({ ...b, updatedAt: "" });
}

/**
 * A worker's result as kept in the record: whole if it fits the subtask's share of the record's results
 * budget (256 KiB over all subtasks, 1–16 KiB each), else a preview. The whole result stays in Warp.
 */
function keepResult(result: WorkItem["result"], subtasks: number, workId: string): unknown {
  if (result === undefined) return undefined;
  const keep = Math.max(
    RESULT_KEEP_MIN_BYTES,
    Math.min(RESULT_KEEP_MAX_BYTES, Math.floor(RESULTS_BUDGET_BYTES / Math.max(1, subtasks))),
  );
  const json = JSON.stringify(result);
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes <= keep) return result;
  return {
    truncated: true,
    bytes,
    preview: json.slice(0, keep / 2),
    fullResult: `on Warp work item ${workId}`,
  };
}
