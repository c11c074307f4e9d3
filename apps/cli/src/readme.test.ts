import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, test } from "vitest";
import { workspaceRoot } from "./mcp-config.js";
import { createProgram } from "./program.js";

const root = workspaceRoot();

/** The relative link targets of a markdown file (no URLs, no in-page anchors), without their anchors. */
function relativeLinks(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] ?? "")
    .filter((target) => !/^[a-z]+:/.test(target) && !target.startsWith("#"))
    .map((target) => target.split("#")[0] ?? "");
}

describe("README and getting started", () => {
  test("the README links every page in docs/", () => {
    const linked = new Set(relativeLinks(join(root, "README.md")));
    const pages = readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md"));
    expect(pages.length).toBeGreaterThan(0);
    for (const page of pages) expect(linked.has(`docs/${page}`), `docs/${page}`).toBe(true);
  });

  test("every relative link of the README, docs/ and the CLI's README points at a file that exists", () => {
    const files = [
      join(root, "README.md"),
      join(root, "apps/cli/README.md"),
      ...readdirSync(join(root, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => join(root, "docs", f)),
    ];
    for (const file of files) {
      for (const target of relativeLinks(file)) {
        expect(existsSync(resolve(dirname(file), target)), `${file} → ${target}`).toBe(true);
      }
    }
  });

  test("every `./loominal <command> --option` the README shows exists in the CLI; CI runs ./loominal test", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const program = createProgram({
      env: {},
      cwd: root,
      out: () => undefined,
      err: () => undefined,
      commandName: "./loominal",
    });
    const shown = [...readme.matchAll(/\.\/loominal ([a-z-]+)((?: --[a-z-]+)*)/g)];
    expect(shown.length).toBeGreaterThan(5);
    for (const [text, name, options] of shown) {
      // `test` is the bootstrap script's own command.
      if (name === "test") continue;
      const command = program.commands.find((c) => c.name() === name);
      expect(command, text).toBeDefined();
      for (const option of (options ?? "").split(" ").filter(Boolean)) {
        expect(
          command?.options.some((o) => o.long === option),
          `${text}: ${option}`,
        ).toBe(true);
      }
    }
    expect(readme).toContain("./loominal up --detach");
    expect(readme).toContain("./loominal mcp-config --write");
    expect(readFileSync(join(root, ".ci/run"), "utf8")).toMatch(/^\.\/loominal test$/m);
  });
});
