// An agent process that takes file leases on command, for lease tests across processes.
// Configuration from the environment (NATS_URL, LOOMINAL_PROJECT_ID, LOOMINAL_AGENT_NAME, LOOMINAL_LOCK_DIR, …),
// project directory = cwd. Reads one JSON command per line on stdin and answers one JSON line on stdout:
//   {"op":"acquire","paths":[…],"mode":"exclusive"|"shared","ttlMs"?:n,"tag"?:any} → {"tag","acquired","leaseId"?}
//   {"op":"release","leaseIds":[…]}  → {"released":[…]}
//   {"op":"exit"}                    → closes Warp (a clean exit) and exits 0
import { createInterface } from "node:readline";
import { Fabric, loadConfig } from "@loominal/fabric";
import { Warp } from "../dist/index.js";

const config = loadConfig();
const fabric = await Fabric.connect({ nats: config.nats });
const warp = await Warp.open({ config, fabric, workMaintenance: false });
await warp.ready(10_000);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ ready: true, agentId: warp.agentId, pid: process.pid });

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  try {
    if (cmd.op === "acquire") {
      const r = await warp.leases.acquire({
        paths: cmd.paths,
        mode: cmd.mode ?? "exclusive",
        reason: cmd.reason ?? "race",
        ...(cmd.ttlMs ? { ttlMs: cmd.ttlMs } : {}),
      });
      say({ tag: cmd.tag, acquired: r.acquired, leaseId: r.acquired ? r.lease.leaseId : undefined });
    } else if (cmd.op === "release") {
      say({ tag: cmd.tag, released: await warp.leases.release(cmd.leaseIds) });
    } else if (cmd.op === "exit") {
      await warp.close();
      await fabric.close();
      process.exit(0);
    }
  } catch (err) {
    say({ tag: cmd.tag, error: String(err?.message ?? err) });
  }
}
