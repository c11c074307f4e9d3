#!/usr/bin/env node
// Latency of `loominal hook <event>` as Claude Code runs it: a fresh process per call, hook input on
// stdin, against a live nats-server, for an agent with capabilities, a few unread messages, leases and
// queued work for its capabilities and others (the common case: nothing new to show after the first
// run), with one new offer per call, and with NATS down. Two set-ups of the same CLI, measured call by
// call alternately: `socket`, where the agent's Warp MCP server runs as a child of this process (as Claude
// Code starts it beside its hooks), so the hook asks it over its socket (`socketViaBin`: the same, started
// as `node dist/bin.js hook <event>`); and `fallback`, where the agent's Warp runs in this process and
// listens on no socket, so the hook does the work itself. `shell` is the shell hook `bash dist/hook.sh
// <event> <node>` against the same server (loopback TCP, no Node started). `nodeFloor` is `node -e ""` and
// `shellFloor` `bash -c :` in the same rotation: what any Node hook, or any bash hook, pays at the same
// moments. (Claude Code runs each hook command through a shell as well; that cost is the same for all.)
// Usage: node bench/hook-latency.mjs [--calls 40] [--cli path/to/hook.cjs|bin.js] [--baseline path/to/bin.js]
//   Starts its own nats-server; run `pnpm build` first. The hook runs as `node dist/hook.cjs <event>`
//   (what `loominal mcp-config --hooks` writes); --cli measures another entry or build of the CLI;
//   --baseline measures a second build alongside in a third set-up (without a server), so all see the
//   same machine load.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, loadConfig } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { eventually, spawnStdio } from "@loominal/testkit";
import { Warp } from "@loominal/warp";
import { benchServer, percentiles, report } from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const calls = Number(args.get("calls") ?? 40);
const MAX_MS = 120_000;
// What `loominal mcp-config --hooks` writes: `node dist/hook.cjs <event>`; a bin.js runs `bin.js hook <event>`.
const CLI = args.get("cli") ?? fileURLToPath(new URL("../apps/cli/dist/hook.cjs", import.meta.url));
const BASELINE = args.get("baseline");
const WARP_BIN = join(dirname(createRequire(import.meta.url).resolve("@loominal/warp")), "bin.js");
/** A NATS URL nothing listens on. */
const NOWHERE = "nats://127.0.0.1:1";

const HOOK_SH = join(dirname(CLI), "hook.sh");

function runHook(cli, event, input, env, keepStderr = false, node = process.execPath) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const [file, argv] = cli.endsWith(".sh")
      ? ["bash", [cli, event, node]]
      : [process.execPath, cli.endsWith(".cjs") ? [cli, event] : [cli, "hook", event]];
    const child = spawn(file, argv, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stdout.resume();
    if (keepStderr) child.stderr.on("data", (b) => (stderr += b));
    else child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code, stderr }));
    child.stdin.end(JSON.stringify(input));
  });
}

const server = await benchServer();
const opened = [];
const temp = [];

/**
 * One project with its own directory: an agent with capabilities, a peer's messages, lease and offers.
 * With `server`, the agent is a Warp MCP server process started here (the session's), else a Warp in
 * this process.
 */
async function setUp(label, cli, server = false) {
  const dir = mkdtempSync(join(tmpdir(), "bench-hook-"));
  const locks = mkdtempSync(join(tmpdir(), "bench-hook-locks-"));
  temp.push(dir, locks);
  const env = {
    ...process.env,
    NATS_URL: server.url,
    LOOMINAL_PROJECT_ID: `bench-${randomId().slice(0, 8)}`,
    LOOMINAL_LOCK_DIR: locks,
  };
  const open = async (name, capabilities = []) => {
    const config = loadConfig({ cwd: dir, env: { ...env, LOOMINAL_AGENT_NAME: name } });
    const fabric = await Fabric.connect({ nats: config.nats });
    const warp = await Warp.open({ config, fabric, lockDir: locks });
    await warp.ready(5_000);
    await warp.registry.register({ agentType: "bench", capabilities });
    opened.push(async () => {
      await warp.close();
      await fabric.close();
    });
    return warp;
  };
  const capabilities = ["review", "typescript"];
  let meId;
  if (server) {
    const client = await spawnStdio({
      command: process.execPath,
      args: [WARP_BIN],
      cwd: dir,
      env: { ...env, LOOMINAL_LOG_LEVEL: "warn", LOOMINAL_TOOLS: "full" },
    });
    opened.push(() => client.close());
    const call = async (name, args) => {
      const r = await client.call(name, args);
      if (r.isError) throw new Error(`${name}: ${r.text}`);
      return r.structured;
    };
    meId = (await eventually(() => call("warp_handle_get", {}), { timeoutMs: 20_000 })).agentId;
    await call("warp_registry_register", { agentType: "bench", capabilities });
  } else {
    meId = (await open("default", capabilities)).agentId;
  }
  const peer = await open("peer");
  for (let i = 0; i < 5; i++) await peer.inbox.send(meId, `message ${i}`);
  await peer.leases.acquire({ paths: ["src/core"], mode: "exclusive", reason: "bench" });
  let n = 0;
  const offer = (capability) =>
    peer.work.offer({ taskId: `task-${n}`, description: `bench work item ${n++}`, capability });
  for (let i = 0; i < 5; i++) await offer("review");
  for (let i = 0; i < 5; i++) await offer("deploy");
  await runHook(cli, "UserPromptSubmit", { cwd: dir }, env); // shows the messages and the work once
  if (server) {
    // Only the server can answer a hook whose own NATS URL leads nowhere: the socket is in use.
    const r = await runHook(cli, "UserPromptSubmit", { cwd: dir }, { ...env, NATS_URL: NOWHERE }, true);
    if (r.code !== 0 || r.stderr !== "")
      throw new Error(`the hook did not answer through the socket: ${r.stderr}`);
    // And the shell hook, with a node that does not exist: only the server, over TCP, can answer.
    const sh = await runHook(
      HOOK_SH,
      "Stop",
      { cwd: dir },
      { ...env, NATS_URL: NOWHERE },
      true,
      "/nonexistent",
    );
    if (sh.code !== 0 || sh.stderr !== "")
      throw new Error(`the shell hook did not answer over TCP: ${sh.code} ${sh.stderr}`);
  }
  return { label, cli, dir, env, offer, server };
}

/** Calls of one event per set-up, alternating between them call by call. */
async function series(all, event, inputOf, options = {}) {
  // NATS down is the hook's own connection: only set-ups without a server make one.
  const setups = options.natsDown ? all.filter((s) => !s.server && !s.cli?.endsWith(".sh")) : all;
  const samples = setups.map(() => []);
  const deadline = Date.now() + MAX_MS;
  for (let i = 0; i < calls && Date.now() < deadline; i++) {
    const order = i % 2 === 0 ? setups.map((_, j) => j) : setups.map((_, j) => setups.length - 1 - j);
    for (const j of order) {
      const s = setups[j];
      if (s.floor) {
        const t0 = performance.now();
        const [file, argv] = s.floor === "bash" ? ["bash", ["-c", ":"]] : [process.execPath, ["-e", ""]];
        await new Promise((r) => spawn(file, argv).on("close", r));
        samples[j].push(performance.now() - t0);
        continue;
      }
      await options.before?.(s);
      const env = options.natsDown ? { ...s.env, NATS_URL: "nats://127.0.0.1:1" } : s.env;
      const r = await runHook(s.cli, event, inputOf(s), env);
      if (r.code !== 0) throw new Error(`hook exited ${r.code}`);
      samples[j].push(r.ms);
    }
  }
  const out = { calls: samples[0].length };
  setups.forEach((s, j) => {
    out[s.label] = percentiles(samples[j]);
  });
  return out;
}

try {
  const socket = await setUp("socket", CLI, true);
  const setups = [
    socket,
    // The same session and server, through the older hook command `node dist/bin.js hook <event>`.
    ...(CLI.endsWith(".cjs")
      ? [
          { ...socket, label: "socketViaBin", cli: join(dirname(CLI), "bin.js") },
          // The same server, asked by the shell hook over loopback TCP.
          { ...socket, label: "shell", cli: HOOK_SH },
        ]
      : []),
    await setUp("fallback", CLI),
    ...(BASELINE ? [await setUp("baseline", BASELINE)] : []),
    // `node -e ""` in the same rotation: the floor any Node hook pays, at the same moments.
    { label: "nodeFloor", floor: "node" },
    // `bash -c :`: the floor of the shell hook.
    { label: "shellFloor", floor: "bash" },
  ];
  const result = {
    ...(BASELINE ? { cli: CLI, baseline: BASELINE } : {}),
    nodeStartupOnly: await (async () => {
      const samples = [];
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now();
        await new Promise((r) => spawn(process.execPath, ["-e", ""]).on("close", r));
        samples.push(performance.now() - t0);
      }
      return percentiles(samples);
    })(),
    userPromptSubmit: await series(setups, "UserPromptSubmit", (s) => ({ cwd: s.dir })),
    postToolUseLeasedFile: await series(setups, "PostToolUse", (s) => ({
      cwd: s.dir,
      tool_name: "Edit",
      tool_input: { file_path: join(s.dir, "src/core/a.ts") },
    })),
    userPromptSubmitNewOffer: await series(setups, "UserPromptSubmit", (s) => ({ cwd: s.dir }), {
      before: (s) => s.offer("typescript"),
    }),
    natsDown: await series(setups, "UserPromptSubmit", (s) => ({ cwd: s.dir }), { natsDown: true }),
  };
  report("hook-latency", result);
} finally {
  for (const close of opened) await close();
  await server.stop?.();
  for (const d of temp) rmSync(d, { recursive: true, force: true });
}
