import type { MemoryCategory, MemoryRecord } from "@loominal/protocol";
import { groupTitle, RECALL_SLOTS } from "./categories.js";
import type { CachedMemory } from "./view.js";

/** A memory in a view together with when it expires (ephemeral categories only). */
export interface HeldMemory {
  entry: CachedMemory;
  expiresAtMs: number | undefined;
}

/** A memory as the store returns it: the stored record, plus when NATS will expire it. */
export type Memory = MemoryRecord & { expiresAt?: string };

export function toMemory(held: HeldMemory): Memory {
  return held.expiresAtMs === undefined
    ? held.entry.record
    : { ...held.entry.record, expiresAt: new Date(held.expiresAtMs).toISOString() };
}

export interface RecallFilter {
  categories?: readonly MemoryCategory[];
  /** A memory matches when it has any of these tags. */
  tags?: readonly string[];
  /** Every whitespace-separated word must appear in the content or tags (case-insensitive). */
  search?: string;
  /** Only memories updated at or after this time (ms since the epoch). */
  sinceMs?: number;
}

export interface RecallOptions extends RecallFilter {
  /** At most this many memories (default 50). */
  limit: number;
  /** The summary, and the content of the memories returned, are each at most this many UTF-8 bytes (default 4096). */
  maxBytes: number;
}

/**
 * A memory as recall returns it: content longer than the summary shows (SUMMARY_CONTENT_MAX characters)
 * is cut to that length and flagged, so the structured result stays within the byte budget too.
 */
export type RecalledMemory = Memory & { contentTruncated?: true };

export interface RecallResult {
  /** The memories in the summary, in order; their `content` totals at most `maxBytes` UTF-8 bytes. */
  memories: RecalledMemory[];
  /** Markdown, at most `maxBytes` UTF-8 bytes, listing exactly the memories returned, in order. */
  summary: string;
  /** Memories that matched the filter, before `limit` and `maxBytes`. */
  matched: number;
  /** True when some matching memories were left out (by `limit` or `maxBytes`). */
  truncated: boolean;
  /** Matching memories per `scope/category`. */
  counts: Record<string, number>;
}

/** Longest piece of one memory's content shown in the summary (and returned by recall), in characters. */
export const SUMMARY_CONTENT_MAX = 500;

export function haystackOf(entry: CachedMemory): string {
  entry.haystack ??= `${entry.record.content.toLowerCase()}\n${entry.record.tags.join(" ")}`;
  return entry.haystack;
}

function matches(
  held: HeldMemory,
  filter: RecallFilter,
  words: readonly string[],
  tags: ReadonlySet<string>,
): boolean {
  const r = held.entry.record;
  if (filter.categories && !filter.categories.includes(r.category)) return false;
  if (filter.sinceMs !== undefined && held.entry.updatedAtMs < filter.sinceMs) return false;
  if (tags.size > 0 && !r.tags.some((t) => tags.has(t))) return false;
  if (words.length > 0) {
    const hay = haystackOf(held.entry);
    for (const w of words) if (!hay.includes(w)) return false;
  }
  return true;
}

/** Recall order: group (core … public), then priority (1 first), then newest first. */
export function compareForRecall(a: HeldMemory, b: HeldMemory): number {
  return a.entry.recallSlot - b.entry.recallSlot || b.entry.updatedAtMs - a.entry.updatedAtMs;
}

/**
 * Chooses and orders the memories an agent should see first and renders them as a summary that fits
 * in `maxBytes`. The memories returned are exactly those in the summary, so the two never disagree;
 * their content is cut as the summary cuts it and, summed, also fits in `maxBytes`.
 * One pass over the candidates puts matches into recall slots (group × priority); only the slots the
 * summary reaches are sorted (newest first), so the cost is linear in what the caller may read.
 */
export function recall(candidates: readonly HeldMemory[], options: RecallOptions): RecallResult {
  const words = (options.search ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  const tags = new Set((options.tags ?? []).map((t) => t.trim().toLowerCase()));
  const slots: HeldMemory[][] = Array.from({ length: RECALL_SLOTS }, () => []);
  const counts: Record<string, number> = {};
  let matchedCount = 0;
  for (const h of candidates) {
    if (!matches(h, options, words, tags)) continue;
    matchedCount++;
    slots[h.entry.recallSlot]?.push(h);
    const group = `${h.entry.record.scope}/${h.entry.record.category}`;
    counts[group] = (counts[group] ?? 0) + 1;
  }
  function* ordered(): Generator<HeldMemory> {
    for (const slot of slots) {
      if (slot.length === 0) continue;
      slot.sort((a, b) => b.entry.updatedAtMs - a.entry.updatedAtMs);
      yield* slot;
    }
  }

  const header = `# Memory context\n`;
  const budget = options.maxBytes;
  let used = utf8Length(header);
  const parts = [header];
  const chosen: RecalledMemory[] = [];
  let contentUsed = 0;
  let group = "";
  // Room for the closing line that says how many were left out.
  const reserve = 96;
  for (const h of ordered()) {
    if (chosen.length >= options.limit) break;
    const r = h.entry.record;
    const title = groupTitle(r.scope, r.category);
    const heading = title === group ? "" : `\n## ${title}\n`;
    const line = `${heading}${summaryLine(r)}\n`;
    const size = utf8Length(line);
    const content = sliceChars(r.content, SUMMARY_CONTENT_MAX);
    const contentSize = utf8Length(content);
    if (used + size + reserve > budget || contentUsed + contentSize > budget) break;
    parts.push(line);
    used += size;
    contentUsed += contentSize;
    group = title;
    const memory = toMemory(h);
    chosen.push(content === r.content ? memory : { ...memory, content, contentTruncated: true });
  }
  const left = matchedCount - chosen.length;
  if (matchedCount === 0) parts.push("\nNo memories match.\n");
  else if (left > 0)
    parts.push(`\n… ${left} more not shown; raise maxBytes or limit, or narrow the filter.\n`);
  let summary = parts.join("");
  if (utf8Length(summary) > budget) summary = truncateUtf8(summary, budget);
  return { memories: chosen, summary, matched: matchedCount, truncated: left > 0, counts };
}

function summaryLine(r: MemoryRecord): string {
  const flat = r.content.replace(/\s+/g, " ").trim();
  const content = flat.length > SUMMARY_CONTENT_MAX ? `${sliceChars(flat, SUMMARY_CONTENT_MAX)}…` : flat;
  const tags = r.tags.length > 0 ? ` ${r.tags.map((t) => `#${t.replace(/\s+/g, "-")}`).join(" ")}` : "";
  const prio = r.priority === 1 ? "!" : "";
  return `- ${prio}${content}${tags} (id ${r.id})`;
}

/** The first `max` UTF-16 units of `s`, without splitting a surrogate pair. */
function sliceChars(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function truncateUtf8(s: string, maxBytes: number): string {
  const buf = Buffer.from(s, "utf8").subarray(0, Math.max(0, maxBytes));
  // Drop a partial multi-byte character at the end.
  return buf.toString("utf8").replace(/\uFFFD$/, "");
}

export interface SearchHit {
  memory: Memory;
  score: number;
}

const DAY_MS = 86_400_000;

/**
 * Ranks memories against a free-text query: each query word found in the content (more occurrences
 * count a little more) or equal to a tag (counts more) adds to the score, scaled by the share of words
 * found; the whole phrase adds a bonus; priority and recency break near-ties.
 */
export function search(
  candidates: readonly HeldMemory[],
  query: string,
  limit: number,
  nowMs: number = Date.now(),
): { hits: SearchHit[]; matched: number } {
  const phrase = query.toLowerCase().replace(/\s+/g, " ").trim();
  const allWords = [...new Set(phrase.split(/[^\p{L}\p{N}_-]+/u).filter(Boolean))];
  const longWords = allWords.filter((w) => w.length >= 2);
  const words = (longWords.length > 0 ? longWords : allWords).slice(0, 32);
  if (words.length === 0) return { hits: [], matched: 0 };
  const scored: Array<{ held: HeldMemory; score: number }> = [];
  for (const held of candidates) {
    const hay = haystackOf(held.entry);
    const r = held.entry.record;
    let found = 0;
    let score = 0;
    for (const w of words) {
      const n = countOccurrences(hay, w, 8);
      const tagHit = r.tags.includes(w);
      if (n > 0 || tagHit) found++;
      if (n > 0) score += 1 + Math.log2(n);
      if (tagHit) score += 2;
    }
    if (found === 0) continue;
    score *= found / words.length;
    if (words.length > 1 && phrase.length > 2 && hay.includes(phrase)) score += 3;
    score += (3 - r.priority) * 0.25;
    score += 0.5 * Math.exp(-(nowMs - held.entry.updatedAtMs) / (30 * DAY_MS));
    scored.push({ held, score });
  }
  scored.sort((a, b) => b.score - a.score || compareForRecall(a.held, b.held));
  return {
    hits: scored
      .slice(0, limit)
      .map((s) => ({ memory: toMemory(s.held), score: Math.round(s.score * 1000) / 1000 })),
    matched: scored.length,
  };
}

function countOccurrences(hay: string, word: string, cap: number): number {
  let n = 0;
  let i = hay.indexOf(word);
  while (i !== -1 && n < cap) {
    n++;
    i = hay.indexOf(word, i + word.length);
  }
  return n;
}
