import { LoominalError } from "@loominal/protocol";
import type { Channels } from "./channels.js";
import type { Inbox } from "./inbox.js";

export const SEARCH_DEFAULT_LIMIT = 20;
export const SEARCH_MAX_LIMIT = 100;
export const SEARCH_DEFAULT_MAX_SCAN = 2_000;
export const SEARCH_MAX_SCAN = 10_000;
const EXCERPT_RADIUS = 80;

export interface SearchInput {
  /** Words that must all appear (case-insensitive), or a phrase in double quotes. */
  query: string;
  /** Channels to search (default: every configured one). */
  channels?: string[];
  /** Search your inbox too (default true). */
  inbox?: boolean;
  limit?: number;
  /** Most stored messages looked at over all sources (default 2,000, at most 10,000). */
  maxScan?: number;
}

export interface SearchHit {
  source: "inbox" | "channel";
  channel?: string;
  seq: number;
  messageId?: string;
  threadId?: string;
  fromId: string;
  fromHandle: string;
  sentAt: string;
  excerpt: string;
}

export interface SearchResult {
  /** Newest first. */
  hits: SearchHit[];
  count: number;
  /** Matches beyond `limit` that were not returned. */
  moreMatches: number;
  /** Stored messages looked at, and the bound. */
  scanned: number;
  maxScan: number;
  /** Older messages were left unsearched because the bound was reached. */
  truncated: boolean;
}

/**
 * Text search over what the agent may read: its own inbox (read and unread; nothing is consumed) and the
 * channels' messages its scope lets it see (the same checks as the read tools). The cost is bounded by
 * `maxScan` stored messages, the newest of each source first.
 */
export async function searchMessages(
  sources: { inbox: Inbox; channels: Channels },
  input: SearchInput,
): Promise<SearchResult> {
  const terms = parseQuery(input.query);
  const limit = input.limit ?? SEARCH_DEFAULT_LIMIT;
  const maxScan = input.maxScan ?? SEARCH_DEFAULT_MAX_SCAN;
  if (!Number.isInteger(limit) || limit < 1 || limit > SEARCH_MAX_LIMIT)
    throw new LoominalError("invalid_input", `limit must be an integer from 1 to ${SEARCH_MAX_LIMIT}`);
  if (!Number.isInteger(maxScan) || maxScan < 1 || maxScan > SEARCH_MAX_SCAN)
    throw new LoominalError("invalid_input", `maxScan must be an integer from 1 to ${SEARCH_MAX_SCAN}`);
  const channelNames = input.channels ?? sources.channels.list().map((c) => c.name);
  for (const c of channelNames) sources.channels.info(c); // unknown channels fail before any read
  const withInbox = input.inbox !== false;
  const sourceCount = channelNames.length + (withInbox ? 1 : 0);
  if (sourceCount === 0)
    throw new LoominalError("invalid_input", "nothing to search: give channels or inbox");

  // Each source gets an equal share of the bound; what one leaves unused goes to the next.
  let budget = maxScan;
  let left = sourceCount;
  let scanned = 0;
  let truncated = false;
  const hits: SearchHit[] = [];
  const inboxShare = withInbox ? Math.floor(budget / left--) : 0;
  if (withInbox && inboxShare < 1) truncated = true;
  else if (withInbox) {
    const r = await sources.inbox.scan(inboxShare);
    budget -= r.scanned;
    scanned += r.scanned;
    if (r.stored > r.scanned) truncated = true;
    for (const m of r.messages) {
      const excerpt = match(m.message, terms);
      if (excerpt === undefined) continue;
      hits.push({
        source: "inbox",
        seq: m.seq,
        ...(m.messageId !== undefined ? { messageId: m.messageId } : {}),
        ...(m.threadId !== undefined ? { threadId: m.threadId } : {}),
        fromId: m.from,
        fromHandle: m.fromHandle,
        sentAt: m.sentAt,
        excerpt,
      });
    }
  }
  for (const channel of channelNames) {
    const share = Math.floor(budget / left--);
    if (share < 1) {
      // The bound is spent: this channel is not searched at all.
      truncated = true;
      continue;
    }
    const r = await sources.channels.scanNewest(channel, share);
    budget -= r.scanned;
    scanned += r.scanned;
    if (r.scanned >= share && r.firstSeq > r.storedFirstSeq) truncated = true;
    for (const m of r.messages) {
      const excerpt = match(m.message, terms);
      if (excerpt === undefined) continue;
      hits.push({
        source: "channel",
        channel,
        seq: m.seq,
        ...(m.messageId !== undefined ? { messageId: m.messageId } : {}),
        ...(m.threadId !== undefined ? { threadId: m.threadId } : {}),
        fromId: m.senderId,
        fromHandle: m.senderHandle,
        sentAt: m.sentAt,
        excerpt,
      });
    }
  }
  hits.sort((a, b) => (a.sentAt < b.sentAt ? 1 : a.sentAt > b.sentAt ? -1 : 0));
  const page = hits.slice(0, limit);
  return {
    hits: page,
    count: page.length,
    moreMatches: hits.length - page.length,
    scanned,
    maxScan,
    truncated,
  };
}

/** The lower-case terms of a query: a "quoted phrase" is one term, other words each one. */
function parseQuery(query: string): string[] {
  if (typeof query !== "string" || query.trim().length === 0 || query.length > 200)
    throw new LoominalError("invalid_input", "query must be 1–200 characters of words to find");
  const terms: string[] = [];
  const re = /"([^"]+)"|(\S+)/g;
  for (let m = re.exec(query); m !== null; m = re.exec(query)) {
    const t = (m[1] ?? m[2] ?? "").trim().toLowerCase();
    if (t) terms.push(t);
  }
  if (terms.length === 0) throw new LoominalError("invalid_input", "query has no words to find");
  return terms;
}

/** An excerpt around the first term when every term occurs in `text`, else undefined. */
function match(text: string, terms: string[]): string | undefined {
  const lower = text.toLowerCase();
  let first = -1;
  for (const t of terms) {
    const at = lower.indexOf(t);
    if (at < 0) return undefined;
    if (first < 0 || at < first) first = at;
  }
  const start = Math.max(0, first - EXCERPT_RADIUS);
  const end = Math.min(text.length, first + EXCERPT_RADIUS * 2);
  const body = text.slice(start, end).replace(/\s+/g, " ").trim();
  return `${start > 0 ? "…" : ""}${body}${end < text.length ? "…" : ""}`;
}
