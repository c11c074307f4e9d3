import { spawn } from "node:child_process";
import { Fabric, loadConfig } from "@loominal/fabric";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { Warp } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_BIN } from "./cli.test-helper.js";

let nats: NatsServer;
const cleanups: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await nats?.stop();
});

/** Runs `loominal hook <event>` as Claude Code does: hook input as JSON on stdin. */
function hook(event: string, input: Record<string, unknown>, env: Record<string, string>) {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("NATS_") && !k.startsWith("LOOMINAL_")) clean[k] = v;
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, "hook", event], {
      env: { ...clean, ...env },
      stdio: "pipe",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(JSON.stringify({ hook_event_name: event, ...input }));
  });
}

async function agent(dir: string, projectId: string, name: string, lockDir: string, capabilities?: string[]) {
  const config = loadConfig({
    cwd: dir,
    env: { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_AGENT_NAME: name },
  });
  const fabric = await Fabric.connect({ nats: config.nats });
  const warp = await Warp.open({ config, fabric, lockDir });
  cleanups.push(async () => {
    await warp.close();
    await fabric.close();
  });
  await warp.ready(5_000);
  await warp.setHandle(name === "default" ? "me" : name);
  await warp.registry.register({ agentType: "developer", ...(capabilities ? { capabilities } : {}) });
  return warp;
}

/** The additional context of a hook's JSON output, checked against the shape Claude Code reads. */
function context(stdout: string, event: string): string {
  const out = JSON.parse(stdout) as {
    hookSpecificOutput?: { hookEventName?: string; additionalContext?: unknown };
  };
  expect(out.hookSpecificOutput?.hookEventName).toBe(event);
  expect(typeof out.hookSpecificOutput?.additionalContext).toBe("string");
  return String(out.hookSpecificOutput?.additionalContext);
}

describe("loominal hook", () => {
  it("surfaces each direct message exactly once across runs, urgent first, and lease conflicts of touched files", async () => {
    const repo = tempDir("hook-repo-");
    const locks = tempDir("hook-locks-");
    cleanups.push(repo.cleanup, locks.cleanup);
    const projectId = uniqueProjectId();
    const me = await agent(repo.path, projectId, "default", locks.path);
    const bob = await agent(repo.path, projectId, "bob", locks.path);
    const env = { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_LOCK_DIR: locks.path };

    expect((await hook("SessionStart", { cwd: repo.path }, env)).stdout).toBe("");
    await bob.inbox.send(me.agentId, "the schema changed, rebase please");
    await bob.inbox.send(me.agentId, "stop: main is broken", { priority: "urgent" });

    const first = await hook("UserPromptSubmit", { cwd: repo.path, prompt: "go on" }, env);
    expect(first.code, first.stderr).toBe(0);
    const text = context(first.stdout, "UserPromptSubmit");
    expect(text).toContain("2 unread");
    expect(text.indexOf("stop: main is broken")).toBeLessThan(text.indexOf("the schema changed"));
    expect(text).toContain("URGENT");

    // Nothing new: nothing shown, whichever event asks.
    for (const event of ["UserPromptSubmit", "PostToolUse", "Stop", "SessionStart"]) {
      const again = await hook(event, { cwd: repo.path }, env);
      expect(again.code).toBe(0);
      expect(again.stdout, event).toBe("");
    }

    // A new one is shown alone, still counted with the unread ones.
    await bob.inbox.send(me.agentId, "third");
    const stop = await hook("Stop", { cwd: repo.path, stop_hook_active: false }, env);
    const blocked = JSON.parse(stop.stdout) as { decision: string; reason: string };
    expect(blocked.decision).toBe("block");
    expect(blocked.reason).toContain("3 unread");
    expect(blocked.reason).toContain("third");
    expect(blocked.reason).not.toContain("main is broken");

    // Read messages are not counted any more; touching a file bob leased exclusively is reported once.
    await me.inbox.read({ limit: 10 });
    const lease = await bob.leases.acquire({
      paths: ["src/core"],
      mode: "exclusive",
      reason: "rewriting core",
    });
    expect(lease.acquired).toBe(true);
    const touch = {
      cwd: repo.path,
      tool_name: "Edit",
      tool_input: { file_path: `${repo.path}/src/core/a.ts` },
    };
    const conflict = context((await hook("PostToolUse", touch, env)).stdout, "PostToolUse");
    expect(conflict).toContain("src/core/a.ts");
    expect(conflict).toContain("bob");
    expect(conflict).toContain("rewriting core");
    expect(conflict).not.toContain("unread");
    expect((await hook("PostToolUse", touch, env)).stdout).toBe("");
  });

  it("surfaces work offered for the agent's capabilities once; not work for other capabilities, nor claimed work", async () => {
    const repo = tempDir("hook-work-");
    const locks = tempDir("hook-work-locks-");
    cleanups.push(repo.cleanup, locks.cleanup);
    const projectId = uniqueProjectId();
    await agent(repo.path, projectId, "default", locks.path, ["review", "typescript"]);
    const lead = await agent(repo.path, projectId, "lead", locks.path);
    const worker = await agent(repo.path, projectId, "worker", locks.path, ["typescript"]);
    const env = { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_LOCK_DIR: locks.path };

    expect((await hook("SessionStart", { cwd: repo.path }, env)).stdout).toBe("");
    const review = await lead.work.offer({
      taskId: "review-parser",
      description: "Review the parser rewrite\nin src/parser",
      capability: "review",
    });
    const deploy = await lead.work.offer({
      taskId: "deploy-staging",
      description: "Deploy to staging",
      capability: "deploy",
    });

    const first = await hook("UserPromptSubmit", { cwd: repo.path, prompt: "go on" }, env);
    expect(first.code, first.stderr).toBe(0);
    const text = context(first.stdout, "UserPromptSubmit");
    expect(text).toContain("review: 1");
    expect(text).toContain(review.workId);
    expect(text).toContain("review-parser");
    expect(text).toContain("Review the parser rewrite in src/parser");
    expect(text).not.toContain(deploy.workId);
    expect(text).not.toContain("deploy");

    // Shown once, whichever event asks next.
    for (const event of ["UserPromptSubmit", "PostToolUse", "Stop", "SessionStart"]) {
      const again = await hook(event, { cwd: repo.path }, env);
      expect(again.code).toBe(0);
      expect(again.stdout, event).toBe("");
    }

    // Work another agent claimed before the hook ran is not waiting; what is offered after it is.
    const taken = await lead.work.offer({
      taskId: "fix-types",
      description: "Fix the type errors",
      capability: "typescript",
    });
    const claimed = await worker.work.claim({ capability: "typescript", timeoutMs: 10_000 });
    expect(claimed?.workId).toBe(taken.workId);
    const open = await lead.work.offer({
      taskId: "fix-lint",
      description: "Fix the lint warnings",
      capability: "typescript",
    });
    const stop = await hook("Stop", { cwd: repo.path, stop_hook_active: false }, env);
    expect(stop.code, stop.stderr).toBe(0);
    const blocked = JSON.parse(stop.stdout) as { decision: string; reason: string };
    expect(blocked.decision).toBe("block");
    expect(blocked.reason).toContain(open.workId);
    expect(blocked.reason).toContain("typescript: 1");
    expect(blocked.reason).not.toContain(taken.workId);
    expect(blocked.reason).not.toContain(review.workId);
    expect((await hook("UserPromptSubmit", { cwd: repo.path }, env)).stdout).toBe("");
  }, 120_000);

  it("exits 0 with a note when NATS is down", async () => {
    const down = await NatsServer.start();
    const url = down.url;
    await down.stop();
    const repo = tempDir("hook-down-");
    cleanups.push(repo.cleanup);
    const r = await hook(
      "SessionStart",
      { cwd: repo.path },
      { NATS_URL: url, LOOMINAL_PROJECT_ID: uniqueProjectId() },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("NATS unreachable");
    expect(JSON.parse(r.stdout)).toMatchObject({
      systemMessage: expect.stringContaining("NATS unreachable"),
    });
    const quiet = await hook("UserPromptSubmit", { cwd: repo.path }, { NATS_URL: url });
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe("");
  });
});
