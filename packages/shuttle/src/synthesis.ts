import type { OrchestrationRecord, SubtaskStatus } from "@loominal/protocol";
import type { FileRead } from "./paths.js";

/** One statement a contradiction is made of. */
export interface KeyStatement {
  subtaskId: string;
  /** The value as written (trimmed). */
  value: string;
  /** 1-based line number in the subtask's output file. */
  line: number;
}

/**
 * Two or more subtask outputs that state the same key with different values.
 * `opposite_yes_no`: every value is a yes/no word and both answers occur.
 * `different_values`: anything else that differs after normalisation.
 */
export interface Contradiction {
  key: string;
  kind: "opposite_yes_no" | "different_values";
  statements: KeyStatement[];
}

/** A subtask whose output is not in the document, and why. */
export interface SynthesisGap {
  subtaskId: string;
  title: string;
  status: SubtaskStatus;
  reason: string;
}

export type SynthesisFormat = "markdown" | "json";

export interface Synthesis {
  format: SynthesisFormat;
  document: string;
  /** Subtask ids whose output is in the document, in plan order. */
  included: string[];
  /** Subtasks that failed, were blocked or cancelled, are still running, or completed without output. */
  gaps: SynthesisGap[];
  contradictions: Contradiction[];
}

const POSITIVE = new Set(["yes", "true", "enabled", "on"]);
const NEGATIVE = new Set(["no", "false", "disabled", "off"]);

/**
 * A "key line": `Key: value` or `Key = value`, optionally as a list item and with the key in bold,
 * outside fenced code blocks, not a heading, key of 1–48 characters starting with a letter, value of at
 * most 120 characters and not a URL continuation (`https://…`).
 */
const KEY_LINE =
  /^\s*(?:[-*+]\s+)?(?:\*\*|__)?([A-Za-z][A-Za-z0-9 _/()-]{0,47}?)(?:\*\*|__)?\s*(?::|=)\s*(.+?)\s*$/;

/** The key lines of one output: normalised key → first statement of it. */
export function keyLines(content: string): Map<string, { value: string; normalised: string; line: number }> {
  const found = new Map<string, { value: string; normalised: string; line: number }>();
  let inFence = false;
  const lines = content.split(/\r?\n/);
  lines.forEach((text, i) => {
    if (/^\s*(```|~~~)/.test(text)) {
      inFence = !inFence;
      return;
    }
    if (inFence || /^\s*#/.test(text)) return;
    const m = KEY_LINE.exec(text);
    if (!m) return;
    const rawKey = m[1] ?? "";
    let value = (m[2] ?? "").replace(/^(\*\*|__)|(\*\*|__)$/g, "").trim();
    if (value.startsWith("//") || value.length === 0 || value.length > 120) return;
    value = value.replace(/^[`"']|[`"']$/g, "").trim();
    const key = rawKey.toLowerCase().replace(/\s+/g, " ").trim();
    if (key.length === 0 || found.has(key)) return;
    const normalised = value
      .toLowerCase()
      .replace(/\s+/g, " ")
      .replace(/[.,;!]+$/, "")
      .trim();
    found.set(key, { value, normalised, line: i + 1 });
  });
  return found;
}

function polarity(normalised: string): "yes" | "no" | undefined {
  if (POSITIVE.has(normalised)) return "yes";
  if (NEGATIVE.has(normalised)) return "no";
  return undefined;
}

/**
 * Contradictions between outputs: the same key line with differing values in two or more subtasks.
 * Yes/no words compare by answer (`yes` agrees with `true`); other values compare after lower-casing,
 * collapsing whitespace and dropping trailing punctuation. Statements within one output are not compared.
 * Nothing else is detected: prose that disagrees without a shared key line goes unnoticed.
 */
export function detectContradictions(
  outputs: ReadonlyArray<{ subtaskId: string; content: string }>,
): Contradiction[] {
  const byKey = new Map<string, Array<KeyStatement & { normalised: string }>>();
  for (const o of outputs) {
    for (const [key, s] of keyLines(o.content)) {
      const list = byKey.get(key) ?? [];
      list.push({ subtaskId: o.subtaskId, value: s.value, line: s.line, normalised: s.normalised });
      byKey.set(key, list);
    }
  }
  const found: Contradiction[] = [];
  for (const [key, statements] of byKey) {
    if (statements.length < 2) continue;
    const polarities = statements.map((s) => polarity(s.normalised));
    const allBoolean = polarities.every((p) => p !== undefined);
    const distinct = allBoolean ? new Set(polarities) : new Set(statements.map((s) => s.normalised));
    if (distinct.size < 2) continue;
    found.push({
      key,
      kind: allBoolean ? "opposite_yes_no" : "different_values",
      statements: statements.map(({ subtaskId, value, line }) => ({ subtaskId, value, line })),
    });
  }
  return found;
}

function gapReason(
  status: SubtaskStatus,
  error: string | undefined,
  outputFile: string,
  problem: string | undefined,
): string {
  switch (status) {
    case "completed":
      return problem
        ? `completed but its output file was not read: ${problem}`
        : `completed but left no readable output file at ${outputFile} (missing, or a link leading out of the work dir)`;
    case "failed":
      return `failed: ${error ?? "no reason given"}`;
    case "blocked":
      return `never ran: ${error ?? "a dependency failed"}`;
    case "cancelled":
      return `cancelled${error ? `: ${error}` : ""}`;
    default:
      return `still ${status}; no output yet`;
  }
}

/**
 * Merges the outputs of an orchestration into one document, in plan order, naming every subtask whose
 * output is missing and every contradiction found between outputs. `problems` says, per subtask, why an
 * output file that exists was not read.
 */
export function synthesize(
  record: OrchestrationRecord,
  outputs: ReadonlyMap<string, FileRead | undefined>,
  format: SynthesisFormat,
  problems: ReadonlyMap<string, string> = new Map(),
): Synthesis {
  const included: string[] = [];
  const gaps: SynthesisGap[] = [];
  const sections: Array<{
    subtaskId: string;
    title: string;
    status: SubtaskStatus;
    content: string | null;
    truncated: boolean;
  }> = [];
  for (const s of record.subtasks) {
    const out = outputs.get(s.id);
    const usable = s.status === "completed" && out !== undefined;
    if (usable) included.push(s.id);
    else
      gaps.push({
        subtaskId: s.id,
        title: s.title,
        status: s.status,
        reason: gapReason(s.status, s.error, s.outputFile, problems.get(s.id)),
      });
    sections.push({
      subtaskId: s.id,
      title: s.title,
      status: s.status,
      content: usable ? out.content : null,
      truncated: usable ? out.truncated : false,
    });
  }
  const contradictions = detectContradictions(
    sections.flatMap((s) => (s.content === null ? [] : [{ subtaskId: s.subtaskId, content: s.content }])),
  );
  if (format === "json") {
    const document = JSON.stringify(
      { orchestrationId: record.orchestrationId, task: record.task, sections, gaps, contradictions },
      null,
      2,
    );
    return { format, document, included, gaps, contradictions };
  }
  const parts: string[] = [
    `# ${record.task.split(/\r?\n/)[0] ?? "Synthesis"}`,
    "",
    `Orchestration \`${record.orchestrationId}\`: ${included.length} of ${record.subtasks.length} subtask outputs merged in plan order.`,
    "",
  ];
  sections.forEach((s, i) => {
    parts.push(`## ${i + 1}. ${s.title} (\`${s.subtaskId}\`)`, "");
    if (s.content === null) {
      const gap = gaps.find((g) => g.subtaskId === s.subtaskId);
      parts.push(`_No output: ${gap?.reason ?? s.status}._`, "");
    } else {
      parts.push(s.content.trimEnd(), "");
      if (s.truncated) parts.push("_(output truncated)_", "");
    }
  });
  parts.push("## Failed or missing subtasks", "");
  if (gaps.length === 0) parts.push("None.", "");
  else for (const g of gaps) parts.push(`- \`${g.subtaskId}\` (${g.title}): ${g.reason}`);
  if (gaps.length > 0) parts.push("");
  parts.push("## Contradictions", "");
  if (contradictions.length === 0)
    parts.push("None found between key lines (`key: value`) of the outputs.", "");
  else {
    for (const c of contradictions) {
      const said = c.statements.map((s) => `\`${s.subtaskId}\` line ${s.line}: "${s.value}"`).join("; ");
      parts.push(
        `- **${c.key}** (${c.kind === "opposite_yes_no" ? "opposite yes/no" : "different values"}): ${said}`,
      );
    }
    parts.push("");
  }
  return { format, document: parts.join("\n"), included, gaps, contradictions };
}
