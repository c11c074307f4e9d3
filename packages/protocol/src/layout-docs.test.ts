import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { natsLayoutMarkdown } from "./subjects.js";

/** A Markdown table as rows of trimmed cells, so column padding (the formatter's) does not matter. */
function cells(table: string): string[][] {
  return table
    .trim()
    .split("\n")
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, "")
        .split("|")
        .map((c) => c.trim().replace(/^-+$/, "---")),
    );
}

describe("docs/architecture.md", () => {
  it("shows the NATS layout exactly as the code builds it (regenerate: node scripts/gen-layout.mjs)", () => {
    const doc = readFileSync(new URL("../../../docs/architecture.md", import.meta.url), "utf8");
    const table = doc.split("<!-- layout:start -->")[1]?.split("<!-- layout:end -->")[0] ?? "";
    expect(cells(table)).toEqual(cells(natsLayoutMarkdown()));
  });
});
