import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, test } from "vitest";
import { runCli } from "./cli.test-helper.js";

// Each command loads what it needs when it runs (src/actions/): building the command tree, `--help` and
// `--version` load neither the NATS client, nor the MCP SDK, nor zod. Checked by the modules a run
// resolves, recorded by a resolve hook (ES modules) and the require cache at exit (CommonJS).
const dir = tempDir("cli-startup-");
afterAll(() => dir.cleanup());
const log = join(dir.path, "modules.log");
writeFileSync(
  join(dir.path, "hooks.mjs"),
  `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.LOOMINAL_TEST_MODULE_LOG, r.url + "\\n");
  return r;
}
`,
);
writeFileSync(
  join(dir.path, "record.mjs"),
  `import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";
register("./hooks.mjs", import.meta.url);
const cache = createRequire(import.meta.url).cache;
process.on("exit", () =>
  appendFileSync(process.env.LOOMINAL_TEST_MODULE_LOG, Object.keys(cache).map((f) => pathToFileURL(f).href + "\\n").join("")),
);
`,
);

/** Runs the built CLI and returns the URLs of the modules it loaded. */
async function loaded(args: string[], env: Record<string, string> = {}) {
  rmSync(log, { force: true });
  const run = await runCli(args, {
    cwd: dir.path,
    env: { ...env, LOOMINAL_TEST_MODULE_LOG: log },
    nodeArgs: ["--import", pathToFileURL(join(dir.path, "record.mjs")).href],
  });
  const modules = [...new Set(readFileSync(log, "utf8").split("\n").filter(Boolean))];
  // The recorder works: the CLI's own entry and commander are there.
  expect(modules.some((m) => m.endsWith("/dist/bin.js"))).toBe(true);
  expect(modules.some((m) => m.includes("/commander/"))).toBe(true);
  return { run, modules };
}

const HEAVY = ["/@nats-io/", "/@modelcontextprotocol/", "/zod/"];
const heavyIn = (modules: string[], marks = HEAVY) => modules.filter((m) => marks.some((h) => m.includes(h)));

describe("what a CLI invocation loads", () => {
  test("--version and --help load no NATS client, MCP SDK or zod", async () => {
    const version = await loaded(["--version"]);
    expect(version.run.code).toBe(0);
    expect(version.run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(heavyIn(version.modules)).toEqual([]);

    const help = await loaded(["--help"]);
    expect(help.run.code).toBe(0);
    expect(help.run.stdout).toContain("Usage: loominal");
    expect(heavyIn(help.modules)).toEqual([]);
  });

  test("a usage error loads none of them either, and keeps its message and exit code", async () => {
    const bad = await loaded(["no-such-command"]);
    expect(bad.run.code).toBe(2);
    expect(bad.run.stderr).toContain("unknown command 'no-such-command'");
    expect(heavyIn(bad.modules)).toEqual([]);
  });

  test("work ls and mcp-config read the configuration without the NATS client or the MCP SDK", async () => {
    const noClients = ["/@nats-io/", "/@modelcontextprotocol/"];
    const ls = await loaded(["work", "ls"], { WEFT_URL: "http://127.0.0.1:1", WEFT_TOKEN: "t" });
    expect(ls.run.code).toBe(1);
    expect(ls.run.stderr).toContain("loominal: cannot reach Weft at http://127.0.0.1:1");
    expect(heavyIn(ls.modules, noClients)).toEqual([]);

    const mcp = await loaded(["mcp-config"]);
    expect(mcp.run.code, mcp.run.stderr).toBe(0);
    expect(Object.keys(JSON.parse(mcp.run.stdout).mcpServers)).toContain("loominal-warp");
    expect(heavyIn(mcp.modules, noClients)).toEqual([]);
  });
});
