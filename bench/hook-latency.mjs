#!/usr/bin/env node
// Latency of `loominal hook <event>` as Claude Code runs it: a fresh process per call, hook input on
// stdin, against a live nats-server, for an agent with capabilities, a few unread messages, leases and
// queued work for its capabilities and others (the common case: nothing new to show after the first
// run), with one new offer per call, and with NATS down.
// Usage: node bench/hook-latency.mjs [--calls 40] [--cli path/to/bin.js] [--baseline path/to/bin.js]
//   Starts its own nats-server; run `pnpm build` first. --cli measures another build of the CLI;
//   --baseline measures a second build call by call alongside (alternating, each in its own project
//   and directory), so both see the same machine load.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, loadConfig } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { Warp } from "@loominal/warp";
import { benchServer, percentiles, report } from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const calls = Number(args.get("calls") ?? 40);
const MAX_MS = 120_000;
const CLI = args.get("cli") ?? fileURLToPath(new URL("../apps/cli/dist/bin.js", import.meta.url));
const BASELINE = args.get("baseline");

function runHook(cli, event, input, env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [cli, "hook", event], { env, stdio: ["pipe", "pipe", "pipe"] });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code }));
    child.stdin.end(JSON.stringify(input));
  });
}

const server = await benchServer();
const opened = [];
const temp = [];

/** One project with its own directory: an agent with capabilities, a peer's messages, lease and offers. */
async function setUp(cli) {
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
  const me = await open("default", ["review", "typescript"]);
  const peer = await open("peer");
  for (let i = 0; i < 5; i++) await peer.inbox.send(me.agentId, `message ${i}`);
  await peer.leases.acquire({ paths: ["src/core"], mode: "exclusive", reason: "bench" });
  let n = 0;
  const offer = (capability) =>
    peer.work.offer({ taskId: `task-${n}`, description: `bench work item ${n++}`, capability });
  for (let i = 0; i < 5; i++) await offer("review");
  for (let i = 0; i < 5; i++) await offer("deploy");
  await runHook(cli, "UserPromptSubmit", { cwd: dir }, env); // shows the messages and the work once
  return { cli, dir, env, offer };
}

/** Calls of one event per set-up, alternating between them call by call. */
async function series(setups, event, inputOf, options = {}) {
  const samples = setups.map(() => []);
  const deadline = Date.now() + MAX_MS;
  for (let i = 0; i < calls && Date.now() < deadline; i++) {
    const order = i % 2 === 0 ? setups.map((_, j) => j) : setups.map((_, j) => setups.length - 1 - j);
    for (const j of order) {
      const s = setups[j];
      await options.before?.(s);
      const env = options.natsDown ? { ...s.env, NATS_URL: "nats://127.0.0.1:1" } : s.env;
      const r = await runHook(s.cli, event, inputOf(s), env);
      if (r.code !== 0) throw new Error(`hook exited ${r.code}`);
      samples[j].push(r.ms);
    }
  }
  const out = { calls: samples[0].length, ...percentiles(samples[0]) };
  if (setups.length > 1) out.baseline = percentiles(samples[1]);
  return out;
}

try {
  const setups = [await setUp(CLI), ...(BASELINE ? [await setUp(BASELINE)] : [])];
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
