#!/usr/bin/env node
// Warp channels: library send throughput (many publishes outstanding), and MCP tool round trips over stdio
// (the built `loominal-warp` bin, spawned as Claude Code would) for warp_channels_send and warp_channels_read.
// Usage: node bench/warp-channels.mjs [--messages 50000] [--outstanding 256] [--calls 2000]
//        (starts its own nats-server unless NATS_URL is set; run `pnpm build` first)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, loadConfig } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { spawnStdio } from "@loominal/testkit";
import { Warp } from "@loominal/warp";
import { benchServer, bounded, percentiles, report, since } from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const num = (k, d) => (args.has(k) ? Number(args.get(k)) : d);

const MESSAGES = num("messages", 50_000);
const OUTSTANDING = num("outstanding", 256);
const CALLS = num("calls", 2_000);
const MAX_MS = 120_000;
const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "packages", "warp", "dist", "bin.js");
const TEXT = "x".repeat(100);

const server = await benchServer();
const dir = mkdtempSync(join(tmpdir(), "bench-warp-channels-"));
const projectId = `bench-${randomId().slice(0, 12)}`;
writeFileSync(
  join(dir, ".loominal.json"),
  JSON.stringify({
    projectId,
    warp: {
      channels: [
        { name: "bench", maxMessages: 1_000_000, maxBytes: 1024 * 1024 * 1024 },
        { name: "rt", maxMessages: 1_000_000, maxBytes: 1024 * 1024 * 1024 },
      ],
    },
  }),
);

try {
  // ——— library: channel send throughput ———
  const config = loadConfig({ cwd: dir, env: { NATS_URL: server.url } });
  const fabric = await Fabric.connect({ nats: config.nats, name: "bench-warp-channels" });
  const warp = await Warp.open({ config, fabric });
  await warp.ready(5_000);
  await warp.channels.send("bench", "warm-up");
  {
    const lat = [];
    const t0 = performance.now();
    const sent = await bounded({ count: MESSAGES, maxMs: MAX_MS, concurrency: OUTSTANDING }, async () => {
      const t = performance.now();
      await warp.channels.send("bench", TEXT);
      lat.push(since(t));
    });
    const secs = since(t0) / 1000;
    report("warp.channels.send.library", {
      messages: sent,
      outstanding: OUTSTANDING,
      bytesPerMessage: TEXT.length,
      msgPerSec: Math.round(sent / secs),
      latencyMs: percentiles(lat),
    });
  }
  {
    // Paging through what was just written, 200 per page with the cursor.
    const t0 = performance.now();
    let cursor = 1;
    let read = 0;
    let pages = 0;
    const lat = [];
    while (read < MESSAGES && since(t0) < MAX_MS) {
      const t = performance.now();
      const page = await warp.channels.read("bench", { cursor, limit: 200 });
      lat.push(since(t));
      pages++;
      read += page.messages.length;
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    const secs = since(t0) / 1000;
    report("warp.channels.read.library", {
      messages: read,
      pages,
      pageSize: 200,
      msgPerSec: Math.round(read / secs),
      pageLatencyMs: percentiles(lat),
    });
  }
  await warp.close();
  await fabric.close();

  // ——— MCP over stdio: tool call round trips ———
  const client = await spawnStdio({
    command: process.execPath,
    args: [BIN],
    cwd: dir,
    env: { NATS_URL: server.url, LOOMINAL_LOG_LEVEL: "warn", LOOMINAL_TOOLS: "full" },
  });
  try {
    const callOk = async (name, a) => {
      const r = await client.call(name, a);
      if (r.isError) throw new Error(`${name}: ${r.text}`);
      return r.structured;
    };
    // Warm up: connection, stream creation, JIT.
    for (let i = 0; i < 200; i++) {
      try {
        await callOk("warp_channels_send", { channel: "rt", message: TEXT });
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await callOk("warp_channels_read", { channel: "rt", limit: 20 });

    const sendLat = [];
    await bounded({ count: CALLS, maxMs: MAX_MS }, async () => {
      const t = performance.now();
      await callOk("warp_channels_send", { channel: "rt", message: TEXT });
      sendLat.push(since(t));
    });
    report("warp.mcp.stdio.channels_send", {
      calls: sendLat.length,
      sequential: true,
      latencyMs: percentiles(sendLat),
    });

    // Following the channel: each read starts at the previous nextCursor (the common agent pattern).
    let cursor = 1;
    const followLat = [];
    await bounded({ count: CALLS, maxMs: MAX_MS }, async () => {
      const t = performance.now();
      const page = await callOk("warp_channels_read", { channel: "rt", cursor, limit: 20 });
      followLat.push(since(t));
      cursor = page.hasMore ? page.nextCursor : 1;
    });
    report("warp.mcp.stdio.channels_read.follow", {
      calls: followLat.length,
      limit: 20,
      latencyMs: percentiles(followLat),
    });

    // The newest page without a cursor (stream info + a new consumer each time).
    const tailLat = [];
    await bounded({ count: CALLS, maxMs: MAX_MS }, async () => {
      const t = performance.now();
      await callOk("warp_channels_read", { channel: "rt", limit: 20 });
      tailLat.push(since(t));
    });
    report("warp.mcp.stdio.channels_read.newest", {
      calls: tailLat.length,
      limit: 20,
      latencyMs: percentiles(tailLat),
    });

    // The same calls minus NATS: a tool answered from memory, to show what stdio + MCP + zod cost alone.
    const listLat = [];
    await bounded({ count: CALLS, maxMs: MAX_MS }, async () => {
      const t = performance.now();
      await callOk("warp_channels_list", {});
      listLat.push(since(t));
    });
    report("warp.mcp.stdio.channels_list", { calls: listLat.length, latencyMs: percentiles(listLat) });
  } finally {
    await client.close();
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
