import type { Fabric, JsMsg, Logger } from "@loominal/fabric";
import { LoominalError, type WarpConfig, WORK_ID_RE, type WorkItem, workIdSchema } from "@loominal/protocol";
import type { OfferJournal } from "./journal.js";
import type { LedgerEntry } from "./ledger.js";
import type { QueueResources } from "./recovery.js";

export type WorkSettings = WarpConfig["work"];

/** What the parts of a work queue share: who it acts as, its settings, and what it runs on. */
export interface QueueContext {
  readonly fabric: Fabric;
  readonly projectId: string;
  readonly agentId: string;
  readonly userId: string;
  readonly settings: WorkSettings;
  readonly logger: Logger;
  readonly resources: QueueResources;
  readonly journal: OfferJournal;
  /** Claims this process holds, by work id. */
  readonly held: Map<string, HeldClaim>;
  /** Tells the queue's listeners that `held` changed (the registry shows the agent busy while it holds any). */
  heldChanged(): void;
  /** The agent type claims are made as (undefined: claims are not checked against it). */
  readonly agentType: (() => string | undefined) | undefined;
  /** Whether this agent may see an item: its scope, as offered, admits this agent. */
  mayRead(item: WorkItem): boolean;
}

export function invalid(message: string): LoominalError {
  return new LoominalError("invalid_input", message);
}

export function checkWorkId(workId: unknown): string {
  if (typeof workId === "string" && WORK_ID_RE.test(workId)) return workId;
  const r = workIdSchema.safeParse(workId);
  if (!r.success) throw invalid(r.error.issues.map((i) => i.message).join("; "));
  return r.data;
}

/** A claim this process holds: the JetStream message (to ack, nak, extend) and the ledger state it wrote. */
export interface HeldClaim {
  msg: JsMsg;
  claimId: string;
  entry: LedgerEntry;
}

/** Thrown inside a ledger mutation when an offer must not be claimed; says what to do with the message. */
export class OfferNotClaimable extends Error {
  constructor(
    readonly action: "ack" | "term" | "leave" | "release" | "repair",
    readonly why: string,
  ) {
    super(why);
  }
}
