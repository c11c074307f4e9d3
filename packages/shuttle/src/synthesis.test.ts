import type { OrchestrationRecord, SubtaskState } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import type { FileRead } from "./paths.js";
import { detectContradictions, keyLines, synthesize } from "./synthesis.js";

describe("keyLines", () => {
  it("reads key lines, list items and bold keys, ignoring headings, code fences and URLs", () => {
    const lines = keyLines(
      [
        "# Title: not a key",
        "Database: Postgres",
        "- **Cache** = Redis.",
        "See https://example.com/x",
        "```",
        "inside: fence",
        "```",
        "database: MySQL",
      ].join("\n"),
    );
    expect([...lines.keys()]).toEqual(["database", "cache"]);
    expect(lines.get("database")).toMatchObject({ value: "Postgres", normalised: "postgres", line: 2 });
    expect(lines.get("cache")).toMatchObject({ normalised: "redis", line: 3 });
  });
});

describe("detectContradictions", () => {
  it("reports opposite yes/no answers and differing values for the same key", () => {
    const found = detectContradictions([
      { subtaskId: "a", content: "Needs migration: yes\nLanguage: TypeScript\nOwner: team" },
      { subtaskId: "b", content: "needs migration: No\nLanguage: typescript.\n" },
      { subtaskId: "c", content: "Language: Go\nOwner: team" },
    ]);
    expect(found).toEqual([
      {
        key: "needs migration",
        kind: "opposite_yes_no",
        statements: [
          { subtaskId: "a", value: "yes", line: 1 },
          { subtaskId: "b", value: "No", line: 1 },
        ],
      },
      {
        key: "language",
        kind: "different_values",
        statements: [
          { subtaskId: "a", value: "TypeScript", line: 2 },
          { subtaskId: "b", value: "typescript.", line: 2 },
          { subtaskId: "c", value: "Go", line: 1 },
        ],
      },
    ]);
  });

  it("treats yes and true as agreeing", () => {
    expect(
      detectContradictions([
        { subtaskId: "a", content: "Breaking: yes" },
        { subtaskId: "b", content: "Breaking: true" },
      ]),
    ).toEqual([]);
  });
});

function sub(id: string, status: SubtaskState["status"], extra: Partial<SubtaskState> = {}): SubtaskState {
  return {
    id,
    title: `T ${id}`,
    description: "d",
    capability: "c",
    dependsOn: [],
    wave: 0,
    status,
    outputFile: `subtasks/${id}/output.md`,
    claims: 1,
    updatedAt: "2025-01-01T00:00:00.000Z",
    ...extra,
  };
}

describe("synthesize", () => {
  const record = {
    orchestrationId: "0".repeat(32),
    task: "Ship the feature",
    subtasks: [
      sub("a", "completed"),
      sub("b", "failed", { error: "worker crashed" }),
      sub("c", "completed"),
      sub("d", "blocked", { error: "dependency b did not complete" }),
    ],
  } as unknown as OrchestrationRecord;
  const file = (content: string): FileRead => ({ content, bytes: content.length, truncated: false });
  const outputs = new Map<string, FileRead | undefined>([
    ["a", file("Alpha text\nRisk: low")],
    ["b", undefined],
    ["c", undefined],
    ["d", undefined],
  ]);

  it("merges outputs in plan order and names failed, blocked and missing subtasks", () => {
    const s = synthesize(record, outputs, "markdown");
    expect(s.included).toEqual(["a"]);
    expect(s.gaps.map((g) => [g.subtaskId, g.status])).toEqual([
      ["b", "failed"],
      ["c", "completed"],
      ["d", "blocked"],
    ]);
    expect(s.document).toContain("## 1. T a (`a`)\n\nAlpha text");
    expect(s.document).toContain("- `b` (T b): failed: worker crashed");
    expect(s.document).toContain(
      "- `c` (T c): completed but left no readable output file at subtasks/c/output.md",
    );
    expect(s.document.indexOf("T a")).toBeLessThan(s.document.indexOf("T b"));
  });

  it("produces a JSON document with the same content", () => {
    const s = synthesize(record, outputs, "json");
    const doc = JSON.parse(s.document) as { sections: Array<{ subtaskId: string; content: string | null }> };
    expect(doc.sections.map((x) => x.subtaskId)).toEqual(["a", "b", "c", "d"]);
    expect(doc.sections[0]?.content).toContain("Alpha");
  });
});
