import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.test-helper.js";

const dirs: Array<() => void> = [];
afterAll(() => {
  for (const c of dirs) c();
});

describe("loominal mcp-config --hooks", () => {
  it("merges the hooks into .claude/settings.json, keeps the user's own, says what changed, and is idempotent", async () => {
    const repo = tempDir("hooks-repo-");
    dirs.push(repo.cleanup);
    mkdirSync(join(repo.path, ".git"));
    mkdirSync(join(repo.path, ".claude"));
    const path = join(repo.path, ".claude", "settings.json");
    const mine = { type: "command", command: "npx prettier --write" };
    writeFileSync(
      path,
      JSON.stringify({
        permissions: { allow: ["Bash(ls)"] },
        hooks: { PostToolUse: [{ matcher: "Write", hooks: [mine] }], Notification: [{ hooks: [mine] }] },
      }),
    );
    const first = await runCli(["mcp-config", "--hooks"], { cwd: repo.path });
    expect(first.code, first.stderr).toBe(0);
    for (const event of ["SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"])
      expect(first.stdout).toContain(`${event}: added the loominal hook`);
    const settings = JSON.parse(readFileSync(path, "utf8"));
    expect(settings.permissions).toEqual({ allow: ["Bash(ls)"] });
    expect(settings.hooks.Notification).toEqual([{ hooks: [mine] }]);
    expect(settings.hooks.PostToolUse[0]).toEqual({ matcher: "Write", hooks: [mine] });
    expect(settings.hooks.PostToolUse[1].matcher).toBe("Edit|Write|MultiEdit|NotebookEdit");
    // bash is on PATH here: the shell hook, by absolute paths, with this node for its fallback.
    expect(settings.hooks.Stop[0].hooks[0]).toMatchObject({
      type: "command",
      command: expect.stringMatching(/^"\/[^"]*\/bash" "[^"]*\/dist\/hook\.sh" Stop "[^"]*node[^"]*"$/),
    });

    const again = await runCli(["mcp-config", "--hooks"], { cwd: repo.path });
    expect(again.stdout.match(/unchanged/g)).toHaveLength(4);
    expect(readFileSync(path, "utf8")).toBe(`${JSON.stringify(settings, null, 2)}\n`);

    // A hook written by an earlier version (`bin.js hook <event>`) is updated in place.
    const stop = settings.hooks.Stop[0].hooks[0];
    stop.command = `"/usr/bin/node" "/old/apps/cli/dist/bin.js" hook Stop`;
    writeFileSync(path, JSON.stringify(settings));
    const updated = await runCli(["mcp-config", "--hooks"], { cwd: repo.path });
    expect(updated.stdout).toContain("Stop: updated the loominal hook");
    expect(updated.stdout.match(/unchanged/g)).toHaveLength(3);
    const now = JSON.parse(readFileSync(path, "utf8"));
    expect(now.hooks.Stop).toHaveLength(1);
    const shellCommand = now.hooks.Stop[0].hooks[0].command;
    expect(shellCommand).toMatch(/\/dist\/hook\.sh" Stop "[^"]*"$/);

    // Without bash on PATH: the Node entry; a shell hook written before is updated in place to it.
    const noBash = await runCli(["mcp-config", "--hooks"], { cwd: repo.path, env: { PATH: "/nonexistent" } });
    expect(noBash.code, noBash.stderr).toBe(0);
    expect(noBash.stdout.match(/updated the loominal hook/g)).toHaveLength(4);
    const plain = JSON.parse(readFileSync(path, "utf8"));
    expect(plain.hooks.Stop).toHaveLength(1);
    expect(plain.hooks.Stop[0].hooks[0].command).toMatch(/^"[^"]*node[^"]*" "[^"]*\/dist\/hook\.cjs" Stop$/);
    // And back.
    const back = await runCli(["mcp-config", "--hooks"], { cwd: repo.path });
    expect(back.stdout.match(/updated the loominal hook/g)).toHaveLength(4);
    expect(JSON.parse(readFileSync(path, "utf8")).hooks.Stop[0].hooks[0].command).toBe(shellCommand);
  });

  it("refuses a settings file that is not a JSON object, naming it", async () => {
    const repo = tempDir("hooks-bad-");
    dirs.push(repo.cleanup);
    mkdirSync(join(repo.path, ".git"));
    mkdirSync(join(repo.path, ".claude"));
    writeFileSync(join(repo.path, ".claude", "settings.json"), "[1,");
    const r = await runCli(["mcp-config", "--hooks"], { cwd: repo.path });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("settings.json is not a JSON object");
  });
});
