import {
  type OrchestrationPhase,
  type OrchestrationRecord,
  PHASE_TRANSITIONS,
  TERMINAL_PHASES,
} from "@loominal/protocol";
import { InvalidTransitionError } from "./errors.js";

export function isTerminalPhase(phase: OrchestrationPhase): boolean {
  return TERMINAL_PHASES.includes(phase);
}

export function canTransition(from: OrchestrationPhase, to: OrchestrationPhase): boolean {
  return PHASE_TRANSITIONS[from].includes(to);
}

/** Throws InvalidTransitionError naming the allowed next phases unless `from → to` is allowed. */
export function assertTransition(from: OrchestrationPhase, to: OrchestrationPhase): void {
  if (canTransition(from, to)) return;
  const allowed = PHASE_TRANSITIONS[from];
  const next =
    allowed.length === 0
      ? `${from} is final; start a new orchestration with shuttle_assess_task`
      : `from ${from} the next phase can be ${allowed.join(", ")}`;
  throw new InvalidTransitionError(`cannot move an orchestration from ${from} to ${to}: ${next}`, {
    from,
    to,
    allowed: [...allowed],
  });
}

/** Characters of a transition note kept (the record's schema allows 2 000). */
const NOTE_MAX = 2_000;

/**
 * The record moved to `to`, with the transition recorded at `now` (a longer note is cut to 2 000
 * characters). Does not bump `version`.
 */
export function withPhase(
  record: OrchestrationRecord,
  to: OrchestrationPhase,
  now: string,
  note?: string,
): OrchestrationRecord {
  assertTransition(record.phase, to);
  return {
    ...record,
    phase: to,
    updatedAt: now,
    history: [
      ...record.history,
      {
        from: record.phase,
        to,
        at: now,
        ...(note ? { note: note.length > NOTE_MAX ? `${note.slice(0, NOTE_MAX - 1)}…` : note } : {}),
      },
    ],
  };
}
