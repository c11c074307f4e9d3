#!/usr/bin/env node
// Size of each MCP server's `tools/list` result, per tool profile (LOOMINAL_TOOLS=core|full): what every
// session of an MCP host loads before the agent does anything. Spawns each built server bin over stdio as
// Claude Code does, asks for tools/list with a raw JSON-RPC request, and measures the bytes of the result
// as the server wrote it. Tokens are estimated as bytes / 4 (a rough average for JSON and English with
// Claude's tokenizer; the true count varies with the text).
// Usage: node bench/tools-list-size.mjs [--root /path/to/a/loominal/checkout] [--profiles core,full]
//        (needs no NATS: the servers list their tools while NATS is unreachable; run `pnpm build` first)
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const ROOT = resolve(args.get("root") ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
const PROFILES = (args.get("profiles") ?? "core,full").split(",");

const SERVERS = [
  { server: "warp", bin: "packages/warp/dist/bin.js", args: [] },
  { server: "pattern", bin: "packages/pattern/dist/bin.js", args: [] },
  { server: "shuttle", bin: "packages/shuttle/dist/bin.js", args: [] },
  { server: "weft", bin: "apps/weft/dist/bin.js", args: ["mcp"] },
];

/** A loopback port nothing listens on, so the servers start with NATS unreachable and never connect. */
async function closedPort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Runs one server, sends initialize and tools/list, and returns the raw tools/list result line. */
async function toolsList(bin, binArgs, env, cwd) {
  const child = spawn(process.execPath, [bin, ...binArgs], { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += String(d);
  });
  const lines = [];
  let buffer = "";
  let wake = () => {};
  child.stdout.on("data", (d) => {
    buffer += String(d);
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    wake();
  });
  const exited = new Promise((r) => child.once("close", r));
  const send = (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`);
  const reply = async (id) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const i = lines.findIndex((l) => JSON.parse(l).id === id);
      if (i >= 0) return lines.splice(i, 1)[0];
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`${bin}: no reply to request ${id}; stderr: ${stderr.slice(-500)}`);
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  try {
    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "tools-list-size", version: "0" },
      },
    });
    const init = JSON.parse(await reply(1));
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    send({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} });
    const line = await reply(2);
    return { line, instructions: init.result?.instructions ?? "" };
  } finally {
    child.stdin.end();
    child.kill("SIGTERM");
    await exited;
  }
}

const port = await closedPort();
const rows = [];
for (const { server, bin, args: binArgs } of SERVERS) {
  const path = join(ROOT, bin);
  if (!existsSync(path)) throw new Error(`${path} is missing: run pnpm build in ${ROOT}`);
  for (const profile of PROFILES) {
    const dir = mkdtempSync(join(tmpdir(), "bench-tools-list-"));
    try {
      const env = {
        PATH: process.env.PATH ?? "",
        HOME: dir,
        NATS_URL: `nats://127.0.0.1:${port}`,
        LOOMINAL_PROJECT_DIR: dir,
        LOOMINAL_PROJECT_ID: "bench-tools-list",
        LOOMINAL_LOCK_DIR: dir,
        LOOMINAL_LOG_LEVEL: "error",
        LOOMINAL_TOOLS: profile,
      };
      const { line, instructions } = await toolsList(path, binArgs, env, dir);
      const { result } = JSON.parse(line);
      const size = (v) => Buffer.byteLength(JSON.stringify(v ?? ""), "utf8");
      const bytes = Buffer.byteLength(JSON.stringify(result), "utf8");
      const part = (key) => result.tools.reduce((n, t) => n + (t[key] === undefined ? 0 : size(t[key])), 0);
      rows.push({
        server,
        profile,
        tools: result.tools.length,
        bytes,
        estTokens: Math.round(bytes / 4),
        descriptionBytes: part("description"),
        inputSchemaBytes: part("inputSchema"),
        outputSchemaBytes: part("outputSchema"),
        instructionsBytes: Buffer.byteLength(instructions, "utf8"),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const totals = Object.fromEntries(
  PROFILES.map((profile) => {
    const of = rows.filter((r) => r.profile === profile);
    const bytes = of.reduce((n, r) => n + r.bytes, 0);
    return [profile, { tools: of.reduce((n, r) => n + r.tools, 0), bytes, estTokens: Math.round(bytes / 4) }];
  }),
);
// One JSON line, as bench/lib.mjs's report() prints it (not imported: this needs no NATS or testkit).
const line = {
  bench: "tools-list-size",
  node: process.version,
  at: new Date().toISOString(),
  root: ROOT,
  tokenEstimate: "bytes / 4",
  servers: rows,
  totals,
};
process.stdout.write(`${JSON.stringify(line)}\n`);
const table = [
  "server   profile  tools   bytes  ~tokens  descriptions  inputSchemas  outputSchemas",
  ...rows.map(
    (r) =>
      `${r.server.padEnd(8)} ${r.profile.padEnd(7)} ${String(r.tools).padStart(6)} ${String(r.bytes).padStart(7)} ${String(r.estTokens).padStart(8)} ${String(r.descriptionBytes).padStart(13)} ${String(r.inputSchemaBytes).padStart(13)} ${String(r.outputSchemaBytes).padStart(14)}`,
  ),
  ...Object.entries(totals).map(
    ([p, t]) =>
      `${"all".padEnd(8)} ${p.padEnd(7)} ${String(t.tools).padStart(6)} ${String(t.bytes).padStart(7)} ${String(t.estTokens).padStart(8)}`,
  ),
];
process.stderr.write(`${table.join("\n")}\n`);
