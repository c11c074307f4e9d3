import { isAbsolute, relative, resolve, sep } from "node:path";
import {
  casUpdate,
  ensureBucket,
  entryValue,
  type Fabric,
  jsonCodec,
  type KV,
  type LoominalConfig,
  readAll,
} from "@loominal/fabric";
import {
  buckets,
  DEFAULT_BOUNDARY,
  directMessageSchema,
  inboxLedgerSchema,
  keys,
  LoominalError,
  type ReminderState,
  reminderStateSchema,
  streams,
  subjects,
} from "@loominal/protocol";
import { z } from "zod";
import { type LeaseConflict, leaseConflictsFor, liveFileLeases } from "../leases/file-leases.js";
import { registryEntry } from "../registry.js";
import { type WaitingOffer, type WaitingWork, waitingWork } from "../work/waiting.js";
import { HOOK_EVENTS, type HookAnswer, type HookEvent } from "./protocol.js";

export { HOOK_EVENTS, type HookEvent };

/** A hook waits at most this long for NATS, then lets the session go on. */
export const HOOK_CONNECT_MS = 800;
/** Messages shown in full (the newest, urgent ones first); the rest are counted. */
const SHOWN_MESSAGES = 3;
const EXCERPT_CHARS = 400;
const CONFLICTS_REMEMBERED = 256;
/** New work offers listed (the newest); the rest are counted. */
const SHOWN_OFFERS = 3;
const OFFER_EXCERPT_CHARS = 200;
/** Offer messages one run reads at most; newer ones past it are counted, not listed. */
const OFFER_READS = 20;

/** What Claude Code passes on stdin (only the fields used; the rest is ignored). */
export const hookInputSchema = z.looseObject({
  cwd: z.string().optional(),
  hook_event_name: z.string().optional(),
  stop_hook_active: z.boolean().optional(),
  tool_input: z
    .looseObject({ file_path: z.string().optional(), notebook_path: z.string().optional() })
    .optional(),
});
export type HookInput = z.infer<typeof hookInputSchema>;

const reminderCodec = jsonCodec(reminderStateSchema);
const ledgerCodec = jsonCodec(inboxLedgerSchema);
const messageCodec = jsonCodec(directMessageSchema);

interface Unread {
  seq: number;
  fromHandle: string;
  from: string;
  urgent: boolean;
  message: string;
  sentAt: string;
}

/** What one run puts in front of the agent: only what no earlier run showed. */
export interface Reminders {
  unreadCount: number;
  newMessages: Unread[];
  conflicts: LeaseConflict[];
  /** Per capability of the agent with new offers, how many offers wait in all. */
  waiting: Array<{ capability: string; count: number }>;
  newOffers: WaitingOffer[];
}

const nothing: Reminders = { unreadCount: 0, newMessages: [], conflicts: [], waiting: [], newOffers: [] };

/** Unread direct messages: those the inbox ledger has not recorded as read. */
async function unreadMessages(
  fabric: Fabric,
  p: string,
  agentId: string,
): Promise<{ unread: Unread[]; streamCreated?: string }> {
  const jsm = await fabric.jsm();
  const info = await jsm.streams.info(streams.inbox(p)).catch(() => undefined);
  if (!info || info.state.messages === 0) return { unread: [] };
  const ledgerKv = await ensureBucket(fabric, { name: buckets.inboxLedger(), history: 1 });
  const ledger = entryValue(
    await ledgerKv.get(keys.inboxLedger(p, agentId)),
    ledgerCodec,
    "inbox ledger",
  ).value;
  const sameStream = ledger !== undefined && (ledger.stream === undefined || ledger.stream === info.created);
  const floor = sameStream ? ledger.floor : 0;
  const consumed = new Set(sameStream ? ledger.consumed : []);
  const pulled = await readAll(fabric, streams.inbox(p), {
    filterSubject: subjects.inbox(p, agentId),
    start: { from: "sequence", seq: floor + 1 },
    idleMs: 30_000,
    pullTimeoutMs: 2_000,
  });
  const unread = pulled.messages.flatMap((m) => {
    if (consumed.has(m.streamSeq)) return [];
    const r = messageCodec.safeDecode(m.data, `inbox#${m.streamSeq}`);
    if (!r.ok || r.value.to !== agentId) return [];
    return [
      {
        seq: m.streamSeq,
        from: r.value.from,
        fromHandle: r.value.fromHandle,
        urgent: r.value.priority === "urgent",
        message: r.value.message,
        sentAt: r.value.sentAt,
      },
    ];
  });
  return { unread, streamCreated: info.created };
}

/** Lease conflicts of the files just touched. */
async function fileConflicts(
  fabric: Fabric,
  config: LoominalConfig,
  agentId: string,
  files: string[],
): Promise<LeaseConflict[]> {
  if (files.length === 0) return [];
  const leases = await liveFileLeases(fabric, config.projectId, config.hostname);
  return leaseConflictsFor(leases, files, agentId);
}

/**
 * Work offered for the capabilities the agent registered (its registry entry) since the offers earlier
 * runs looked at (the reminder state read here; the compare-and-set below decides what is new).
 */
async function newWork(
  fabric: Fabric,
  p: string,
  agentId: string,
  remindersKv: () => Promise<KV>,
): Promise<WaitingWork | undefined> {
  const agent = await registryEntry(fabric, p, agentId);
  if (!agent || agent.capabilities.length === 0) return undefined;
  const kv = await remindersKv();
  const state = entryValue(await kv.get(keys.reminders(agentId)), reminderCodec, "reminder state").value;
  const after = state?.work ?? {};
  const work = await waitingWork(fabric, p, agent, {
    ...(state?.workStream !== undefined ? { stream: state.workStream } : {}),
    after,
    maxReads: OFFER_READS,
  });
  const moved =
    work.stream !== undefined &&
    (work.stream !== state?.workStream ||
      Object.entries(work.lookedAt).some(([subject, seq]) => seq > (after[subject] ?? 0)));
  // Nothing arrived since the last run: nothing to show or record.
  return moved ? work : undefined;
}

/**
 * Unread direct messages, lease conflicts for the files just touched and work waiting for the agent's
 * capabilities, minus what earlier runs showed: the reminder state (KV `loom-reminders-<p>`, key
 * `<agentId>`) is updated by compare-and-set, so two hooks running at once never show the same thing twice.
 * The three are looked up at once; one that fails is reported by `warn` and the others are still shown.
 */
async function collect(
  fabric: Fabric,
  config: LoominalConfig,
  agentId: string,
  files: string[],
  warn: (message: string) => void,
  stillWanted: () => boolean,
): Promise<Reminders> {
  const p = config.projectId;
  let kvOpened: Promise<KV> | undefined;
  const remindersKv = () => {
    kvOpened ??= ensureBucket(fabric, { name: buckets.reminders(p), history: 1 });
    return kvOpened;
  };
  const quietly = async <T>(what: string, run: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      warn(`${what} not checked: ${err instanceof Error ? err.message : String(err)}`);
      return fallback;
    }
  };
  const [{ unread, streamCreated }, found, work] = await Promise.all([
    quietly("messages", () => unreadMessages(fabric, p, agentId), { unread: [] as Unread[] }),
    quietly("lease conflicts", () => fileConflicts(fabric, config, agentId, files), []),
    quietly("waiting work", () => newWork(fabric, p, agentId, remindersKv), undefined),
  ]);
  if (unread.length === 0 && found.length === 0 && !work) return nothing;
  // Nobody waits for the answer any more: record nothing, so the next run shows it.
  if (!stillWanted()) throw new Error("the hook stopped waiting");

  const kv = await remindersKv();
  let result: Reminders = nothing;
  await casUpdate(kv, keys.reminders(agentId), reminderCodec, (current) => {
    const state: ReminderState = current ?? { inboxSeq: 0, work: {}, conflicts: [] };
    const fromSeq = state.inboxStream === streamCreated ? state.inboxSeq : 0;
    const newMessages = unread.filter((m) => m.seq > fromSeq);
    const seen = new Set(state.conflicts);
    const conflicts = found.filter((c) => !seen.has(`${c.leaseId}:${c.path}`));

    // Offers up to the recorded sequence of their subject were shown (or looked at) by an earlier run.
    const sameWorkStream = work?.stream !== undefined && state.workStream === work.stream;
    const shownUpTo = sameWorkStream ? state.work : {};
    const newOffers = (work?.offers ?? []).filter(
      (o) => o.seq > (shownUpTo[subjects.workOffer(p, o.boundary, o.capability)] ?? 0),
    );
    const newCapabilities = new Set(newOffers.map((o) => o.capability));
    const waiting = (work?.waiting ?? []).filter((w) => newCapabilities.has(w.capability));
    // Subjects without messages are dropped: everything looked at on them is gone from the queue.
    const lookedAt: Record<string, number> = {};
    for (const [subject, seq] of Object.entries(work?.lookedAt ?? {}))
      lookedAt[subject] = Math.max(seq, shownUpTo[subject] ?? 0);
    const workMoved =
      work?.stream !== undefined &&
      (!sameWorkStream || Object.entries(lookedAt).some(([s, seq]) => seq > (shownUpTo[s] ?? 0)));

    result = { unreadCount: unread.length, newMessages, conflicts, waiting, newOffers };
    if (newMessages.length === 0 && conflicts.length === 0 && !workMoved) return undefined;
    return {
      // Inbox not read this time (empty, or the read failed): what was recorded stays.
      ...(streamCreated !== undefined
        ? { inboxStream: streamCreated, inboxSeq: Math.max(fromSeq, ...unread.map((m) => m.seq)) }
        : {
            ...(state.inboxStream !== undefined ? { inboxStream: state.inboxStream } : {}),
            inboxSeq: state.inboxSeq,
          }),
      ...(work?.stream !== undefined
        ? { workStream: work.stream, work: lookedAt }
        : { ...(state.workStream !== undefined ? { workStream: state.workStream } : {}), work: state.work }),
      conflicts: [...state.conflicts, ...conflicts.map((c) => `${c.leaseId}:${c.path}`)].slice(
        -CONFLICTS_REMEMBERED,
      ),
    };
  });
  return result;
}

/** The reminder text; empty when there is nothing new. Urgent messages come first. */
export function reminderText(r: Reminders): string {
  const parts: string[] = [];
  if (r.newMessages.length > 0) {
    const ordered = [...r.newMessages].sort((a, b) => Number(b.urgent) - Number(a.urgent) || b.seq - a.seq);
    const shown = ordered.slice(0, Math.max(SHOWN_MESSAGES, ordered.filter((m) => m.urgent).length));
    const urgent = shown.filter((m) => m.urgent).length;
    parts.push(
      `Loominal: ${r.unreadCount} unread direct message(s)${urgent > 0 ? `, ${urgent} URGENT` : ""}. Read them with warp_messages_read_direct.`,
    );
    for (const m of shown) {
      const text = m.message.length > EXCERPT_CHARS ? `${m.message.slice(0, EXCERPT_CHARS)}…` : m.message;
      parts.push(`- ${m.urgent ? "URGENT " : ""}from ${m.fromHandle} (${m.from}) at ${m.sentAt}: ${text}`);
    }
    if (r.newMessages.length > shown.length)
      parts.push(`- and ${r.newMessages.length - shown.length} more new`);
  }
  if (r.newOffers.length > 0) {
    const counts = r.waiting.map((w) => `${w.capability}: ${w.count}`).join(", ");
    parts.push(
      `Loominal: work is waiting for your capabilities (${counts}). Claim it with warp_work_claim {capability} (through warp_more if it is not listed); see more with warp_work_list.`,
    );
    for (const o of r.newOffers.slice(0, SHOWN_OFFERS)) {
      const flat = o.description.replace(/\s+/g, " ").trim();
      const text = flat.length > OFFER_EXCERPT_CHARS ? `${flat.slice(0, OFFER_EXCERPT_CHARS)}…` : flat;
      parts.push(
        `- ${o.capability}${o.boundary === DEFAULT_BOUNDARY ? "" : ` (boundary ${o.boundary})`}, priority ${o.priority}: ${o.workId} ${o.taskId}: ${text}`,
      );
    }
    if (r.newOffers.length > SHOWN_OFFERS) parts.push(`- and ${r.newOffers.length - SHOWN_OFFERS} more new`);
  }
  if (r.conflicts.length > 0) {
    parts.push("Loominal: files you just changed are leased exclusively by other agents:");
    for (const c of r.conflicts)
      parts.push(
        `- ${c.path}: ${c.handle} (${c.agentId}) holds ${c.heldPath} until ${c.expiresAt}: ${c.reason}`,
      );
    parts.push("Coordinate with the holder (warp_messages_send_direct) before going on.");
  }
  return parts.join("\n");
}

/** The JSON Claude Code reads from a hook's stdout, or undefined to print nothing. */
export function hookOutput(
  event: HookEvent,
  text: string,
  input: HookInput,
): Record<string, unknown> | undefined {
  if (text === "") return undefined;
  if (event === "Stop") {
    // Keep the agent going once to deal with what arrived; never twice in a row.
    if (input.stop_hook_active === true) return undefined;
    return { decision: "block", reason: text };
  }
  return { hookSpecificOutput: { hookEventName: event, additionalContext: text } };
}

function touchedFiles(input: HookInput, projectDir: string, cwd: string): string[] {
  const raw = [input.tool_input?.file_path, input.tool_input?.notebook_path].filter(
    (f): f is string => typeof f === "string" && f !== "",
  );
  return raw
    .map((f) => relative(projectDir, resolve(cwd, f)).split(sep).join("/"))
    .filter((f) => f !== "" && !f.startsWith("..") && !isAbsolute(f));
}

/** Checks a hook event name: one of HOOK_EVENTS, else LoominalError `invalid_input`. */
export function parseHookEvent(event: string): HookEvent {
  if (!(HOOK_EVENTS as readonly string[]).includes(event))
    throw new LoominalError("invalid_input", `event must be one of ${HOOK_EVENTS.join(", ")}; got ${event}`);
  return event as HookEvent;
}

/** Claude Code's hook input (stdin); empty or unreadable input gives defaults rather than disturb the session. */
export function parseHookInput(text: string): HookInput {
  try {
    const parsed = hookInputSchema.safeParse(text.trim() === "" ? {} : JSON.parse(text));
    if (parsed.success) return parsed.data;
  } catch {
    // Not JSON: defaults.
  }
  return {};
}

/** What a hook prints when NATS cannot be reached (and, for SessionStart, shows the user). */
export function natsUnreachableAnswer(servers: string[], event: HookEvent): HookAnswer {
  const note = `loominal hook: NATS unreachable at ${servers.join(",")}; messages, work and leases not checked.`;
  return {
    ...(event === "SessionStart" ? { stdout: JSON.stringify({ systemMessage: note }) } : {}),
    stderr: [note],
  };
}

export interface HookReminderOptions {
  fabric: Fabric;
  config: LoominalConfig;
  /** The agent the reminders are for. */
  agentId: string;
  event: HookEvent;
  input: HookInput;
  /** The hook's working directory (Claude Code's `cwd` in the input comes first). */
  cwd: string;
  /**
   * Asked before the reminder state is updated: false (the hook gave up waiting) records nothing, so what
   * was found is shown by a later run. Default: always wanted.
   */
  stillWanted?: () => boolean;
}

/**
 * The answer to one Claude Code hook on a connected Fabric: what `loominal hook` prints on stdout (the
 * hook output JSON, or nothing when nothing is new) and notes for stderr. Never throws: a problem is a
 * note. Run by the hook process itself, or by the Warp server of its session for it (its socket).
 */
export async function hookReminders(options: HookReminderOptions): Promise<HookAnswer> {
  const { fabric, config, agentId, event, input } = options;
  const stderr: string[] = [];
  try {
    const cwd = input.cwd ?? options.cwd;
    const files = event === "PostToolUse" ? touchedFiles(input, config.projectDir, cwd) : [];
    const reminders = await collect(
      fabric,
      config,
      agentId,
      files,
      (problem) => stderr.push(`loominal hook: ${problem}`),
      options.stillWanted ?? (() => true),
    );
    const out = hookOutput(event, reminderText(reminders), input);
    return { ...(out ? { stdout: JSON.stringify(out) } : {}), stderr };
  } catch (err) {
    stderr.push(`loominal hook: ${err instanceof Error ? err.message : String(err)}; nothing shown.`);
    return { stderr };
  }
}
