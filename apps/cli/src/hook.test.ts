import { spawn } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import { dirname, join } from "node:path";
import { Fabric, loadConfig, processAlive } from "@loominal/fabric";
import { eventually, NatsServer, spawnStdio, tempDir, uniqueProjectId } from "@loominal/testkit";
import { Warp } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_BIN, runCli } from "./cli.test-helper.js";

/** The Warp MCP server's bin, as Claude Code starts it. */
const WARP_BIN = join(dirname(createRequire(import.meta.url).resolve("@loominal/warp")), "bin.js");
/** A NATS URL nothing listens on: a hook given it can only answer through the session's Warp server. */
const NOWHERE = "nats://127.0.0.1:1";

let nats: NatsServer;
const cleanups: Array<() => Promise<void> | void> = [];
beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await nats?.stop();
});

/** The hook command `loominal mcp-config --hooks` writes: `node dist/hook.cjs <event>`. */
const HOOK_ENTRY = join(dirname(CLI_BIN), "hook.cjs");

/**
 * Runs a hook as Claude Code does, hook input as JSON on stdin: `node dist/hook.cjs <event>`, or with
 * `viaBin` the older command `node dist/bin.js hook <event>`.
 */
function hook(event: string, input: Record<string, unknown>, env: Record<string, string>, viaBin = false) {
  return run(process.execPath, viaBin ? [CLI_BIN, "hook", event] : [HOOK_ENTRY, event], event, input, env);
}

/** Runs a hook command line as Claude Code does: through the shell (`sh -c`), hook input on stdin. */
function shellHook(
  command: string,
  event: string,
  input: Record<string, unknown>,
  env: Record<string, string>,
) {
  return run("/bin/sh", ["-c", command], event, input, env);
}

function run(
  file: string,
  args: string[],
  event: string,
  input: Record<string, unknown>,
  env: Record<string, string>,
) {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("NATS_") && !k.startsWith("LOOMINAL_")) clean[k] = v;
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(file, args, { env: { ...clean, ...env }, stdio: "pipe" });
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

/** Starts the Warp MCP server as a child of this process (as Claude Code starts it beside its hooks). */
async function warpServer(dir: string, env: Record<string, string>) {
  const client = await spawnStdio({
    command: process.execPath,
    args: [WARP_BIN],
    cwd: dir,
    env: { ...env, LOOMINAL_LOG_LEVEL: "warn", LOOMINAL_TOOLS: "full" },
  });
  cleanups.push(() => client.close().catch(() => undefined));
  const me = await eventually(
    async () => {
      const r = await client.call("warp_handle_get");
      if (r.isError) throw new Error(r.text);
      return r.structured as { agentId: string };
    },
    { timeoutMs: 20_000 },
  );
  const registered = await client.call("warp_registry_register", { agentType: "developer" });
  if (registered.isError) throw new Error(registered.text);
  return { client, agentId: me.agentId };
}

/** Sends raw text to the server's loopback TCP port; everything it answers before it closes. */
function rawTcp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let got = "";
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(text));
    socket.on("data", (chunk: string) => {
      got += chunk;
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(got));
  });
}

/** Sends one raw request line to a hook socket; the last line it answers, parsed. */
function rawRequest(path: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let text = "";
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${line}\n`));
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    socket.on("error", reject);
    socket.on("close", () => {
      const lines = text.trim().split("\n");
      resolve(JSON.parse(lines[lines.length - 1] ?? "null") as Record<string, unknown>);
    });
  });
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
    const viaBin = await hook("SessionStart", { cwd: repo.path }, { NATS_URL: url }, true);
    expect(viaBin.code).toBe(0);
    expect(viaBin.stderr).toContain("NATS unreachable");
    for (const bin of [false, true]) {
      const unknown = await hook("Nope", { cwd: repo.path }, { NATS_URL: url }, bin);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain(
        "event must be one of SessionStart, UserPromptSubmit, PostToolUse, Stop",
      );
    }
  });

  it("asks the session's Warp server over its socket, and does the work itself when that server is gone", async () => {
    const repo = tempDir("hook-sock-");
    const locks = tempDir("hook-sock-locks-");
    cleanups.push(repo.cleanup, locks.cleanup);
    const projectId = uniqueProjectId();
    const env = { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_LOCK_DIR: locks.path };
    // The hook's own NATS URL leads nowhere: only the Warp server, on its connection, can answer.
    const viaServer = { ...env, NATS_URL: NOWHERE };
    const { client, agentId } = await warpServer(repo.path, env);
    const bob = await agent(repo.path, projectId, "bob", locks.path);
    const socket = join(locks.path, `${agentId}.sock`);
    const st = lstatSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);

    await bob.inbox.send(agentId, "first, through the socket");
    await bob.inbox.send(agentId, "urgent, through the socket", { priority: "urgent" });
    const first = await hook("UserPromptSubmit", { cwd: repo.path }, viaServer);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toBe("");
    const text = context(first.stdout, "UserPromptSubmit");
    expect(text).toContain("2 unread");
    expect(text.indexOf("urgent, through")).toBeLessThan(text.indexOf("first, through"));
    for (const [event, viaBin] of [
      ["UserPromptSubmit", false],
      ["Stop", true],
      ["SessionStart", false],
    ] as const) {
      const again = await hook(event, { cwd: repo.path }, viaServer, viaBin);
      expect(again.code).toBe(0);
      expect(again.stdout, event).toBe("");
    }

    // A malformed request gets an error answer, and the server keeps answering.
    for (const bad of [
      "not json",
      JSON.stringify({ v: 1, event: "Nope", input: "", cwd: repo.path }),
      JSON.stringify({ v: 99, event: "Stop", input: "", cwd: repo.path }),
      JSON.stringify({ v: 1, event: "Stop", input: 7, cwd: repo.path }),
    ]) {
      const reply = await rawRequest(socket, bad);
      expect(reply.ok, bad).toBe(false);
      expect(String(reply.error), bad).toMatch(/^invalid_input: /);
    }
    const unreadable = await hook("Stop", { cwd: repo.path }, viaServer);
    expect(unreadable.code).toBe(0);
    await bob.inbox.send(agentId, "second");
    const stop = await hook("Stop", { cwd: repo.path, stop_hook_active: false }, viaServer);
    const blocked = JSON.parse(stop.stdout) as { decision: string; reason: string };
    expect(blocked.decision).toBe("block");
    expect(blocked.reason).toContain("3 unread");
    expect(blocked.reason).toContain("second");
    expect(blocked.reason).not.toContain("through the socket");

    // The server dies without a goodbye: its socket stays behind, and the hook does the work itself.
    const pid = (JSON.parse(readFileSync(join(locks.path, `${agentId}.lock`), "utf8")) as { pid: number })
      .pid;
    process.kill(pid, "SIGKILL");
    await eventually(() => {
      if (processAlive(pid)) throw new Error("still alive");
    });
    await client.close().catch(() => undefined);
    expect(lstatSync(socket).isSocket()).toBe(true);
    const alone = await hook("UserPromptSubmit", { cwd: repo.path }, viaServer);
    expect(alone.code).toBe(0);
    expect(alone.stderr).toContain(`NATS unreachable at ${NOWHERE}`);
    await bob.inbox.send(agentId, "third");
    const fallback = await hook("UserPromptSubmit", { cwd: repo.path }, env);
    expect(fallback.code, fallback.stderr).toBe(0);
    const shown = context(fallback.stdout, "UserPromptSubmit");
    expect(shown).toContain("third");
    expect(shown).not.toContain("second");
    expect((await hook("UserPromptSubmit", { cwd: repo.path }, env)).stdout).toBe("");

    // A new server of the session replaces the stale socket and answers again (with the hook's NATS nowhere).
    const restarted = await warpServer(repo.path, env);
    expect(restarted.agentId).toBe(agentId);
    await bob.inbox.send(agentId, "fourth");
    const back = await hook("PostToolUse", { cwd: repo.path }, viaServer);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toBe("");
    const again = context(back.stdout, "PostToolUse");
    expect(again).toContain("fourth");
    expect(again).not.toContain("third");
  }, 120_000);

  it("answers the shell hook (bash, no Node) over loopback TCP with the server's token, the command mcp-config writes", async () => {
    const repo = tempDir("hook-sh-");
    const locks = tempDir("hook-sh-locks-");
    cleanups.push(repo.cleanup, locks.cleanup);
    mkdirSync(join(repo.path, ".git"));
    const projectId = uniqueProjectId();
    const env = { NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, LOOMINAL_LOCK_DIR: locks.path };
    const viaServer = { ...env, NATS_URL: NOWHERE };
    const { client, agentId } = await warpServer(repo.path, env);
    const bob = await agent(repo.path, projectId, "bob", locks.path);

    // The server's file for the shell hook: 0600, one line `pid ppid port token`.
    const file = join(locks.path, `${agentId}.hook`);
    expect(lstatSync(file).mode & 0o777).toBe(0o600);
    const line = readFileSync(file, "utf8");
    const m = /^(\d+) (\d+) (\d+) ([0-9a-f]{64})\n$/.exec(line);
    expect(m, line).not.toBeNull();
    const [, pid, ppid, port, token] = m as unknown as [string, string, string, string, string];
    const lock = JSON.parse(readFileSync(join(locks.path, `${agentId}.lock`), "utf8")) as { pid: number };
    expect(Number(pid)).toBe(lock.pid);
    expect(Number(ppid)).toBe(process.pid);

    // The command `mcp-config --hooks` writes, per event.
    const written = await runCli(["mcp-config", "--hooks"], { cwd: repo.path });
    expect(written.code, written.stderr).toBe(0);
    const settings = JSON.parse(readFileSync(join(repo.path, ".claude", "settings.json"), "utf8")) as {
      hooks: Record<string, Array<{ hooks: Array<{ command: string }> }>>;
    };
    const command = (event: string) => settings.hooks[event]?.at(-1)?.hooks[0]?.command ?? "";
    expect(command("UserPromptSubmit")).toMatch(/bash" "[^"]*\/dist\/hook\.sh" UserPromptSubmit "[^"]+"$/);
    // The same command with a node that does not exist: an answer can only come from bash and the server.
    const noNode = (event: string) => command(event).replace(/ "[^"]+"$/, ' "/nonexistent/node"');

    await bob.inbox.send(agentId, "first, through TCP");
    await bob.inbox.send(agentId, "urgent, through TCP", { priority: "urgent" });
    const first = await shellHook(
      noNode("UserPromptSubmit"),
      "UserPromptSubmit",
      { cwd: repo.path },
      viaServer,
    );
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toBe("");
    const text = context(first.stdout, "UserPromptSubmit");
    expect(first.stdout.endsWith("}\n")).toBe(true);
    expect(text).toContain("2 unread");
    expect(text.indexOf("urgent, through")).toBeLessThan(text.indexOf("first, through"));
    // Each message once, whichever command asks next (a prompt with quotes, backslashes and newlines).
    for (const event of ["UserPromptSubmit", "Stop", "SessionStart"]) {
      const input = { cwd: repo.path, prompt: 'say "hi"\\n\tand\nbye', stop_hook_active: false };
      const again = await shellHook(noNode(event), event, input, viaServer);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout, event).toBe("");
      const written = await shellHook(command(event), event, input, viaServer);
      expect(written.code, written.stderr).toBe(0);
      expect(written.stdout, event).toBe("");
    }
    await bob.inbox.send(agentId, "second");
    const stop = await shellHook(
      command("Stop"),
      "Stop",
      { cwd: repo.path, stop_hook_active: false },
      viaServer,
    );
    const blocked = JSON.parse(stop.stdout) as { decision: string; reason: string };
    expect(blocked.decision).toBe("block");
    expect(blocked.reason).toContain("second");
    expect(blocked.reason).not.toContain("through TCP");

    // The token opens the door; anything else gets no answer at all.
    const request = `${JSON.stringify({ v: 1, event: "Stop", input: "{}", cwd: repo.path, reply: "shell" })}\n`;
    expect(await rawTcp(Number(port), `${token}\n${request}`)).toBe("accepted\nexit 0 0\n");
    const wrong = `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`;
    for (const bad of [`${wrong}\n${request}`, `${token}x\n${request}`, request, "x".repeat(300)])
      expect(await rawTcp(Number(port), bad)).toBe("");
    // A malformed request after the token: a `fail` line (the shell hook then runs the Node hook).
    expect(await rawTcp(Number(port), `${token}\n{"v":1,"reply":"shell"}\n`)).toMatch(
      /^fail invalid_input: /,
    );

    // Two servers equally near in the process tree (another child of this process lists itself): the shell
    // hook cannot tell which is its session's and leaves it to the Node hook.
    const other = spawn("sleep", ["60"], { stdio: "ignore" });
    cleanups.push(() => {
      other.kill();
    });
    const otherFile = join(locks.path, "other.hook");
    writeFileSync(otherFile, `${other.pid} ${process.pid} 1 ${"ab".repeat(32)}\n`, { mode: 0o600 });
    const tie = await shellHook(noNode("Stop"), "Stop", { cwd: repo.path }, viaServer);
    expect(tie.code).not.toBe(0);
    // Its process gone, that file no longer counts.
    other.kill();
    await eventually(() => {
      if (other.exitCode === null && other.signalCode === null) throw new Error("still running");
    });
    const untied = await shellHook(noNode("Stop"), "Stop", { cwd: repo.path }, viaServer);
    expect(untied.code, untied.stderr).toBe(0);
    unlinkSync(otherFile);

    // The server dies without a goodbye: its file stays behind, and the shell hook runs the Node hook.
    process.kill(lock.pid, "SIGKILL");
    await eventually(() => {
      if (processAlive(lock.pid)) throw new Error("still alive");
    });
    await client.close().catch(() => undefined);
    expect(existsSync(file)).toBe(true);
    const gone = await shellHook(
      noNode("UserPromptSubmit"),
      "UserPromptSubmit",
      { cwd: repo.path },
      viaServer,
    );
    expect(gone.code).not.toBe(0);
    await bob.inbox.send(agentId, "third");
    const fallback = await shellHook(
      command("UserPromptSubmit"),
      "UserPromptSubmit",
      { cwd: repo.path },
      env,
    );
    expect(fallback.code, fallback.stderr).toBe(0);
    const shown = context(fallback.stdout, "UserPromptSubmit");
    expect(shown).toContain("third");
    expect(shown).not.toContain("second");
    const down = await shellHook(command("PostToolUse"), "PostToolUse", { cwd: repo.path }, viaServer);
    expect(down.code).toBe(0);
    expect(down.stderr).toContain(`NATS unreachable at ${NOWHERE}`);

    // A new server writes its own file and answers; on a clean exit it removes it.
    const restarted = await warpServer(repo.path, env);
    expect(readFileSync(file, "utf8")).not.toBe(line);
    await bob.inbox.send(agentId, "fourth");
    const back = await shellHook(noNode("PostToolUse"), "PostToolUse", { cwd: repo.path }, viaServer);
    expect(back.code, back.stderr).toBe(0);
    expect(context(back.stdout, "PostToolUse")).toContain("fourth");
    await restarted.client.close();
    await eventually(() => {
      if (existsSync(file)) throw new Error("still there");
    });
  }, 120_000);
});
