import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric, loadConfig } from "@loominal/fabric";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { Warp } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.test-helper.js";

let nats: NatsServer;
const cleanups: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await nats?.stop();
});

function gitEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("NATS_") && !k.startsWith("LOOMINAL_") && !k.startsWith("GIT_")) env[k] = v;
  return {
    ...env,
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.invalid",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.invalid",
    ...extra,
  };
}

function git(dir: string, args: string[], env: NodeJS.ProcessEnv) {
  const r = spawnSync("git", args, { cwd: dir, env, encoding: "utf8" });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("loominal guard in a real git repository", () => {
  it("refuses a commit touching another live agent's exclusive lease, naming holder and reason; the escape hatches work", async () => {
    const repo = tempDir("guard-repo-");
    const locks = tempDir("guard-locks-");
    cleanups.push(repo.cleanup, locks.cleanup);
    const projectId = uniqueProjectId();
    const env = gitEnv({ NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_LOCK_DIR: locks.path });
    expect(git(repo.path, ["init", "-q", "-b", "main"], env).code).toBe(0);

    // Another agent of the project holds src/locked exclusively.
    const config = loadConfig({
      cwd: repo.path,
      env: { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_AGENT_NAME: "alice" },
    });
    const fabric = await Fabric.connect({ nats: config.nats });
    const warp = await Warp.open({ config, fabric, lockDir: locks.path });
    cleanups.push(async () => {
      await warp.close();
      await fabric.close();
    });
    await warp.ready(5_000);
    await warp.setHandle("alice");
    const lease = await warp.leases.acquire({
      paths: ["src/locked"],
      mode: "exclusive",
      reason: "rewriting the parser",
    });
    expect(lease.acquired).toBe(true);

    const installed = await runCli(["guard", "install"], { cwd: repo.path, env: { NATS_URL: nats.url } });
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain("pre-commit");

    mkdirSync(join(repo.path, "src", "locked"), { recursive: true });
    writeFileSync(join(repo.path, "src", "free.ts"), "export {};\n");
    writeFileSync(join(repo.path, "src", "locked", "parser.ts"), "export {};\n");

    // A commit of free files passes.
    git(repo.path, ["add", "src/free.ts"], env);
    const free = git(repo.path, ["commit", "-q", "-m", "free"], env);
    expect(free.code, free.out).toBe(0);

    // One touching the lease is refused, and says who holds it and why.
    git(repo.path, ["add", "src/locked/parser.ts"], env);
    const refused = git(repo.path, ["commit", "-q", "-m", "locked"], env);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain("src/locked/parser.ts");
    expect(refused.out).toContain("alice");
    expect(refused.out).toContain("rewriting the parser");
    expect(git(repo.path, ["log", "--oneline"], env).out.trim().split("\n")).toHaveLength(1);

    // LOOMINAL_GUARD=off and --no-verify let it through.
    expect(git(repo.path, ["commit", "-q", "-m", "off"], { ...env, LOOMINAL_GUARD: "off" }).code).toBe(0);
    writeFileSync(join(repo.path, "src", "locked", "parser.ts"), "export const x = 1;\n");
    git(repo.path, ["add", "-A"], env);
    expect(git(repo.path, ["commit", "-q", "--no-verify", "-m", "no-verify"], env).code).toBe(0);

    // Once released, the same change commits.
    await warp.leases.release();
    writeFileSync(join(repo.path, "src", "locked", "parser.ts"), "export const x = 2;\n");
    git(repo.path, ["add", "-A"], env);
    const after = git(repo.path, ["commit", "-q", "-m", "released"], env);
    expect(after.code, after.out).toBe(0);
  });

  it("warns and allows when NATS cannot be reached", async () => {
    const repo = tempDir("guard-down-");
    cleanups.push(repo.cleanup);
    const down = await NatsServer.start();
    const url = down.url;
    await down.stop();
    const env = gitEnv({ NATS_URL: url, LOOMINAL_PROJECT_ID: uniqueProjectId() });
    git(repo.path, ["init", "-q", "-b", "main"], env);
    expect((await runCli(["guard", "install"], { cwd: repo.path, env: { NATS_URL: url } })).code).toBe(0);
    writeFileSync(join(repo.path, "a.txt"), "a\n");
    git(repo.path, ["add", "a.txt"], env);
    const r = git(repo.path, ["commit", "-q", "-m", "a"], env);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/NATS unreachable.*allowing/);
  });
});
