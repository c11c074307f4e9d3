import { isAbsolute, relative, sep } from "node:path";
import { LEASE_PATH_MAX_CHARS, LoominalError } from "@loominal/protocol";
import braces from "braces";
import picomatch from "picomatch";

/**
 * Paths and globs of file leases, and whether two of them can name the same file.
 *
 * A lease path is relative to the project directory and `/`-separated. A path without glob characters
 * covers itself and everything below it (leasing `packages/warp` leases the directory). Globs use `*`,
 * `?`, `[...]`, `**` (any number of directories) and `{a,b}`; dot files match like any other file.
 * Extglobs (`@(…)`, `!(…)`, …) and negation are refused: a lease must say what it covers, not what it
 * leaves out.
 */

/** Most alternatives one path may expand to through braces. */
const MAX_ALTERNATIVES = 64;

const MATCH_OPTIONS = { dot: true } as const;

/**
 * The lease path for `input`: trimmed, `/`-separated, relative to `projectDir` (an absolute path must lie
 * inside it), without `./`, and with a trailing `/` meaning the directory (`src/` → `src`). Throws
 * `invalid_input` naming the problem.
 */
export function normaliseLeasePath(input: string, projectDir?: string): string {
  let path = input.trim().replaceAll("\\", "/");
  if (path.length === 0) throw invalid(input, "is empty");
  if (path.length > LEASE_PATH_MAX_CHARS)
    throw invalid(input, `is longer than ${LEASE_PATH_MAX_CHARS} characters`);
  if (isAbsolute(path) || path.startsWith("/")) {
    if (projectDir === undefined)
      throw invalid(input, "is absolute; give it relative to the repository root");
    const rel = relative(projectDir, path).split(sep).join("/");
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel))
      throw invalid(input, `is outside the project directory ${projectDir}`);
    path = rel;
  }
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.length === 0)
    throw invalid(input, "names the repository root; name the paths you will change");
  if (segments.some((s) => s === ".."))
    throw invalid(input, "contains '..'; give paths inside the repository");
  path = segments.join("/");
  if (path.startsWith("!")) throw invalid(input, "is a negation; name what the lease covers");
  if (/[@!+*?]\(/.test(path)) throw invalid(input, "uses an extglob; use *, ?, [...], ** and {a,b} only");
  if (path === "**" || /^(\*\*\/)*\*\*$/.test(path))
    throw invalid(input, "covers the whole repository; name the paths you will change");
  alternatives(path);
  return path;
}

function invalid(input: string, problem: string): LoominalError {
  return new LoominalError("invalid_input", `lease path ${JSON.stringify(input.slice(0, 120))} ${problem}`);
}

const alternativesCache = new Map<string, string[]>();

/** The globs a lease path stands for: braces expanded, and a plain path also as `<path>/**`. */
export function alternatives(path: string): string[] {
  const cached = alternativesCache.get(path);
  if (cached) return cached;
  let expanded: string[];
  try {
    expanded = braces(path, { expand: true, rangeLimit: MAX_ALTERNATIVES });
  } catch (cause) {
    throw new LoominalError(
      "invalid_input",
      `lease path ${JSON.stringify(path)} has braces that cannot be expanded`,
      {
        cause,
      },
    );
  }
  if (expanded.length === 0) expanded = [path];
  if (expanded.length > MAX_ALTERNATIVES)
    throw new LoominalError(
      "invalid_input",
      `lease path ${JSON.stringify(path)} expands to ${expanded.length} alternatives; the limit is ${MAX_ALTERNATIVES}`,
    );
  const out = new Set<string>();
  for (const e of expanded) {
    // `[!…]` negates a class as in the shell; picomatch reads it as "`!` or …", so it gets `[^…]`.
    const clean = e
      .split("/")
      .filter((s) => s !== "")
      .join("/")
      .replace(/(^|[^\\])\[!/g, "$1[^");
    out.add(clean);
    if (!picomatch.scan(clean).isGlob) out.add(`${clean}/**`);
    // `dir/**` covers `dir` itself, whatever `dir` is: picomatch does so for `src/**` but not for `*/**`.
    else if (clean.endsWith("/**") && clean.length > 3) out.add(clean.slice(0, -3));
  }
  const list = [...out];
  if (alternativesCache.size > 4_096) alternativesCache.clear();
  alternativesCache.set(path, list);
  return list;
}

const matcherCache = new Map<string, (file: string) => boolean>();

/** Whether the file `file` (relative, `/`-separated) falls under the lease path `path`. */
export function leasePathMatches(path: string, file: string): boolean {
  let m = matcherCache.get(path);
  if (!m) {
    m = picomatch(alternatives(path), MATCH_OPTIONS);
    if (matcherCache.size > 4_096) matcherCache.clear();
    matcherCache.set(path, m);
  }
  return m(file);
}

/**
 * Whether some file path can fall under both lease paths. Decided exactly for the glob grammar above:
 * segment by segment, `**` standing for any number of segments, and within a segment by matching the two
 * patterns against each other (`*` against any run of characters, `?`, literals and classes by whether
 * their character sets meet). Not a comparison of string prefixes: `src/*.ts` and `src/a.js` are disjoint,
 * `src/**` and `**\/*.test.ts` overlap.
 */
export function leasePathsOverlap(a: string, b: string): boolean {
  for (const x of alternatives(a)) {
    for (const y of alternatives(b)) {
      if (globsOverlap(x, y)) return true;
    }
  }
  return false;
}

function globsOverlap(a: string, b: string): boolean {
  const sa = a.split("/").map(parseSegment);
  const sb = b.split("/").map(parseSegment);
  const memo = new Map<number, boolean>();
  const width = sb.length + 1;
  const go = (i: number, j: number): boolean => {
    const k = i * width + j;
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    let r: boolean;
    const x = sa[i];
    const y = sb[j];
    if (x === undefined && y === undefined) r = true;
    else if (x === "**") r = go(i + 1, j) || (y !== undefined && go(i, j + 1));
    else if (y === "**") r = go(i, j + 1) || (x !== undefined && go(i + 1, j));
    else if (x === undefined || y === undefined) r = false;
    else r = segmentsOverlap(x, y) && go(i + 1, j + 1);
    memo.set(k, r);
    return r;
  };
  return go(0, 0);
}

/** A set of characters as inclusive code-point ranges, or the complement of such a set. */
interface CharSet {
  negated: boolean;
  ranges: Array<[number, number]>;
}
type Token = "*" | CharSet;
type Segment = "**" | Token[];

const SLASH = 0x2f;
const ANY: CharSet = { negated: true, ranges: [[SLASH, SLASH]] };

function literal(ch: string): CharSet {
  const c = ch.codePointAt(0) ?? 0;
  return { negated: false, ranges: [[c, c]] };
}

function parseSegment(segment: string): Segment {
  if (segment === "**") return "**";
  const chars = [...segment];
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === "\\" && i + 1 < chars.length) {
      tokens.push(literal(chars[++i] as string));
    } else if (ch === "*") {
      // Consecutive stars inside a segment are one star.
      if (tokens[tokens.length - 1] !== "*") tokens.push("*");
    } else if (ch === "?") {
      tokens.push(ANY);
    } else if (ch === "[") {
      const parsed = parseClass(chars, i);
      if (parsed) {
        tokens.push(parsed.set);
        i = parsed.end;
      } else {
        tokens.push(literal(ch));
      }
    } else {
      tokens.push(literal(ch));
    }
  }
  return tokens;
}

/** Parses `[...]` starting at `start`; undefined when it is not closed (then `[` is a literal). */
function parseClass(chars: string[], start: number): { set: CharSet; end: number } | undefined {
  let i = start + 1;
  let negated = false;
  if (chars[i] === "!" || chars[i] === "^") {
    negated = true;
    i++;
  }
  const ranges: Array<[number, number]> = [];
  let first = true;
  for (; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === "]" && !first) return { set: { negated, ranges }, end: i };
    first = false;
    if (ch === "[" && chars[i + 1] === ":") {
      // A POSIX class ([:alpha:] …): taken as any character, which can only make overlap more likely.
      const close = chars.indexOf("]", i + 2);
      if (close < 0) return undefined;
      ranges.push([0, 0x10ffff]);
      i = close;
      continue;
    }
    let lo = ch;
    if (ch === "\\" && i + 1 < chars.length) lo = chars[++i] as string;
    const c = lo.codePointAt(0) ?? 0;
    if (chars[i + 1] === "-" && chars[i + 2] !== undefined && chars[i + 2] !== "]") {
      let hi = chars[i + 2] as string;
      i += 2;
      if (hi === "\\" && i + 1 < chars.length) hi = chars[++i] as string;
      const d = hi.codePointAt(0) ?? 0;
      ranges.push([Math.min(c, d), Math.max(c, d)]);
    } else {
      ranges.push([c, c]);
    }
  }
  return undefined;
}

function inRanges(c: number, ranges: Array<[number, number]>): boolean {
  return ranges.some(([lo, hi]) => c >= lo && c <= hi);
}

function contains(set: CharSet, c: number): boolean {
  if (c === SLASH) return false;
  return set.negated ? !inRanges(c, set.ranges) : inRanges(c, set.ranges);
}

/** Whether some character (never `/`) is in both sets. */
function setsMeet(a: CharSet, b: CharSet): boolean {
  if (a.negated && b.negated) return true;
  const [pos, other] = a.negated ? [b, a] : [a, b];
  // The meet, if not empty, contains an end of one of pos's ranges or a neighbour of an end of other's.
  const candidates: number[] = [];
  for (const [lo, hi] of pos.ranges) candidates.push(lo, hi);
  for (const [lo, hi] of other.ranges) candidates.push(lo - 1, lo, hi, hi + 1);
  return candidates.some((c) => c >= 0 && inRanges(c, pos.ranges) && contains(pos, c) && contains(other, c));
}

/** Whether one segment name can match both segment patterns. */
function segmentsOverlap(a: Token[], b: Token[]): boolean {
  const memo = new Map<number, boolean>();
  const width = b.length + 1;
  const go = (i: number, j: number): boolean => {
    const k = i * width + j;
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    let r: boolean;
    const x = a[i];
    const y = b[j];
    if (x === undefined && y === undefined) r = true;
    else if (x === "*") r = go(i + 1, j) || (y !== undefined && go(i, j + 1));
    else if (y === "*") r = go(i, j + 1) || (x !== undefined && go(i + 1, j));
    else if (x === undefined || y === undefined) r = false;
    else r = setsMeet(x, y) && go(i + 1, j + 1);
    memo.set(k, r);
    return r;
  };
  return go(0, 0);
}
