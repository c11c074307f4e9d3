import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { natsLayoutMarkdown } from "./subjects.js";

describe("docs/architecture.md", () => {
  it("shows the NATS layout exactly as the code builds it (regenerate: node scripts/gen-layout.mjs)", () => {
    const doc = readFileSync(new URL("../../../docs/architecture.md", import.meta.url), "utf8");
    const table = doc.split("<!-- layout:start -->")[1]?.split("<!-- layout:end -->")[0]?.trim();
    expect(table).toBe(natsLayoutMarkdown());
  });
});
