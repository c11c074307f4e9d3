import { randomId, type WorkEventType, type WorkItem } from "@loominal/protocol";
import { transition } from "./events.js";

/** One delivery of an offer message, as the server reported it. */
export interface Delivery {
  /** The message's stream sequence. */
  seq: number;
  /** How many times the server has delivered it (1 the first time). */
  deliveryCount: number;
}

/**
 * Who looks at a delivered offer: a claimer (which takes the item when it may) or the maintenance sweep
 * (which never claims: it only moves lapsed claims on, and hands pending offers back).
 */
export type DeliveryRole = "claim" | "sweep";

/**
 * What to do with one delivered offer, given the item's ledger record. Decisions that write the ledger
 * are `claim`, `dead`, `expire`; the others say what to do with the message alone:
 * `ack` (a leftover: the item is finished or held under another message), `term` (garbage: no record),
 * `leave` (a live claim holds this very message: let its ack timer run), `release` (a pending item the
 * sweep may not take: hand it back at once), `repair` (dead, but its dead letter was never stored).
 */
export type DeliveryDecision =
  | { action: "claim"; tookOver: boolean }
  | { action: "dead"; reason: string; events: WorkEventType[]; eventReason?: string }
  | { action: "expire" }
  | { action: "ack" | "term" | "leave" | "release" | "repair"; why: string };

/**
 * The claim decision, as a pure function of the ledger record, the delivery and the time. The server
 * redelivers a message only once its ack deadline passed, so a newer delivery of the message a claim
 * holds means that claim lapsed; another message of the same item is a duplicate unless the ledger's own
 * deadline passed too.
 */
export function decideDelivery(
  cur: WorkItem | undefined,
  delivery: Delivery,
  nowMs: number,
  role: DeliveryRole,
): DeliveryDecision {
  if (!cur) return { action: "term", why: "no ledger record" };
  switch (cur.status) {
    case "dead":
      // Marked dead, but the process that marked it stopped (or NATS failed) before the letter was stored.
      if (cur.dead?.dlqSeq === undefined) return { action: "repair", why: "dead letter missing" };
      return { action: "ack", why: "item is dead" };
    case "completed":
    case "cancelled":
    case "discarded":
      return { action: "ack", why: `item is ${cur.status}` };
    case "claimed": {
      const c = cur.claim;
      const lapsed = !c
        ? true
        : c.seq === delivery.seq
          ? delivery.deliveryCount > c.deliveryCount
          : Date.parse(c.expiresAt) <= nowMs;
      if (!lapsed) return { action: c?.seq === delivery.seq ? "leave" : "ack", why: "held by a live claim" };
      if (cur.attempts >= cur.maxAttempts)
        return {
          action: "dead",
          reason: `claim lapsed ${cur.attempts} time(s) without completion`,
          events: ["expired"],
          eventReason: "the last claim lapsed",
        };
      return role === "claim" ? { action: "claim", tookOver: true } : { action: "expire" };
    }
    case "pending":
      if (cur.attempts >= cur.maxAttempts)
        return {
          action: "dead",
          reason: `no attempts left (${cur.attempts} of ${cur.maxAttempts})`,
          events: [],
        };
      return role === "claim"
        ? { action: "claim", tookOver: false }
        : { action: "release", why: "pending: left for a claimer" };
  }
}

// The last two times formatted, so a claim's time and its expiry (or an offer's `availableAt`) do not push
// each other out.
let isoMsA = Number.NaN;
let isoA = "";
let isoMsB = Number.NaN;
let isoB = "";

/**
 * `ms` as an ISO 8601 timestamp. Transitions of one millisecond share the string (formatting costs more):
 * the last two times asked for are remembered.
 */
export function iso(ms: number): string {
  if (ms === isoMsA) return isoA;
  if (ms === isoMsB) return isoB;
  // The older of the two makes room (A is always the newer).
  isoMsB = isoMsA;
  isoB = isoA;
  isoA = new Date(ms).toISOString();
  isoMsA = ms;
  return isoA;
}

/**
 * `obj` without `keys`, for spreading into a new record: `obj` itself when it has none of them (the
 * usual case), otherwise a copy. The copy is built without `delete`, which would leave a slow
 * dictionary-mode object that costs more to spread and to encode.
 */
export function without<T extends object, K extends keyof T>(obj: T, ...keys: K[]): Omit<T, K> {
  let found = false;
  for (const k of keys) if (Object.hasOwn(obj, k)) found = true;
  if (!found) return obj;
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!(keys as PropertyKey[]).includes(k)) copy[k] = v;
  return copy as Omit<T, K>;
}

/**
 * A new record: the fields of `base` with `changes` over them, in the order `{ ...base, ...changes }`
 * gives. Built with Object.assign because on Node 20 an object literal that spreads a record and then adds
 * fields the record lacks (`claim`, `result`, `finishedAt`) takes a slow path, several times the cost.
 */
export function revise(base: Omit<WorkItem, "availableAt" | "claim">, changes: Partial<WorkItem>): WorkItem {
  return Object.assign({}, base, changes) as WorkItem;
}

/** The record of a claim by `agentId` taking `cur` through this delivery. */
export function claimRecord(
  cur: WorkItem,
  delivery: Delivery,
  agentId: string,
  nowMs: number,
  /** When the claim's ack timer started (the delivery, or now if the offer waited in a buffer). */
  timerFromMs: number,
  ackWaitMs: number,
  tookOver: boolean,
): WorkItem {
  const attempt = cur.attempts + 1;
  const at = iso(nowMs);
  return revise(without(cur, "availableAt"), {
    status: "claimed",
    attempts: attempt,
    claim: {
      agentId,
      claimId: randomId(),
      attempt,
      claimedAt: at,
      // Offers delivered together share it (iso keeps two times, so `at` stays too).
      expiresAt: iso(timerFromMs + ackWaitMs),
      seq: delivery.seq,
      deliveryCount: delivery.deliveryCount,
    },
    updatedAt: at,
    lastTransition: tookOver
      ? transition(["expired", "claimed"], agentId, at, { reason: "the previous claim lapsed" })
      : transition(["claimed"], agentId, at),
  });
}

/** The record of `cur` marked dead (its dead letter is stored next, and recorded in `dead.dlqSeq`). */
export function deadRecord(
  cur: WorkItem,
  reason: string,
  agentId: string,
  nowMs: number,
  events: WorkEventType[],
  eventReason?: string,
): WorkItem {
  const at = iso(nowMs);
  return revise(without(cur, "availableAt"), {
    status: "dead",
    dead: { reason, at },
    updatedAt: at,
    lastTransition: transition(events, agentId, at, eventReason !== undefined ? { reason: eventReason } : {}),
  });
}

/** The record of a lapsed claim with attempts left, back in the queue (what the sweep writes). */
export function expiredRecord(cur: WorkItem, agentId: string, nowMs: number): WorkItem {
  const at = iso(nowMs);
  return revise(without(cur, "claim", "availableAt"), {
    status: "pending",
    updatedAt: at,
    lastTransition: transition(["expired"], agentId, at, { reason: "the claim lapsed" }),
  });
}
