#!/usr/bin/env node
// Latency of `loominal hook <event>` as Claude Code runs it: a fresh process per call, hook input on
// stdin, against a live nats-server, for an agent with capabilities, a few unread messages, leases and
// queued work for its capabilities and others (the common case: nothing new to show after the first
// run), with one new offer per call, and with NATS down.
// Usage: node bench/hook-latency.mjs [--calls 40] [--cli path/to/bin.js]
//   (starts its own nats-server; run `pnpm build` first; --cli measures another build of the CLI)
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

function runHook(event, input, env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, "hook", event], { env, stdio: ["pipe", "pipe", "pipe"] });
    child.stdout.resume();
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code }));
    child.stdin.end(JSON.stringify(input));
  });
}

async function series(event, input, env, before = async () => {}) {
  const samples = [];
  const deadline = Date.now() + MAX_MS;
  for (let i = 0; i < calls && Date.now() < deadline; i++) {
    await before(i);
    const r = await runHook(event, input, env);
    if (r.code !== 0) throw new Error(`hook exited ${r.code}`);
    samples.push(r.ms);
  }
  return { calls: samples.length, ...percentiles(samples) };
}

const server = await benchServer();
const dir = mkdtempSync(join(tmpdir(), "bench-hook-"));
const locks = mkdtempSync(join(tmpdir(), "bench-hook-locks-"));
const projectId = `bench-${randomId().slice(0, 8)}`;
const base = {
  ...process.env,
  NATS_URL: server.url,
  LOOMINAL_PROJECT_ID: projectId,
  LOOMINAL_LOCK_DIR: locks,
};
const opened = [];
try {
  const open = async (name, capabilities = []) => {
    const config = loadConfig({ cwd: dir, env: { ...base, LOOMINAL_AGENT_NAME: name } });
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
  const offer = (capability, i) =>
    peer.work.offer({ taskId: `task-${i}`, description: `bench work item ${i}`, capability });
  for (let i = 0; i < 5; i++) await offer("review", i);
  for (let i = 0; i < 5; i++) await offer("deploy", i);
  await runHook("UserPromptSubmit", { cwd: dir }, base); // shows the messages and the work once

  const result = {
    nodeStartupOnly: await (async () => {
      const samples = [];
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now();
        await new Promise((r) => spawn(process.execPath, ["-e", ""]).on("close", r));
        samples.push(performance.now() - t0);
      }
      return percentiles(samples);
    })(),
    userPromptSubmit: await series("UserPromptSubmit", { cwd: dir }, base),
    postToolUseLeasedFile: await series(
      "PostToolUse",
      { cwd: dir, tool_name: "Edit", tool_input: { file_path: join(dir, "src/core/a.ts") } },
      base,
    ),
    userPromptSubmitNewOffer: await series("UserPromptSubmit", { cwd: dir }, base, (i) =>
      offer("typescript", 100 + i),
    ),
    natsDown: await series("UserPromptSubmit", { cwd: dir }, { ...base, NATS_URL: "nats://127.0.0.1:1" }),
  };
  report("hook-latency", result);
} finally {
  for (const close of opened) await close();
  await server.stop?.();
  rmSync(dir, { recursive: true, force: true });
  rmSync(locks, { recursive: true, force: true });
}
