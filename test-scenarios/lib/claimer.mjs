#!/usr/bin/env node
// A work claimer process for scenarios: claims items of one capability with the built @loominal/warp
// library and handles them according to MODE, printing one JSON line per step on stdout.
//
// Environment:
//   NATS_URL (and NATS_USER / NATS_PASSWORD), PROJECT_ID, CAPABILITY (default "scenario"), LANES (concurrent claim loops, default 1),
//   PREFETCH (default 1), ACK_WAIT_MS (default 2000), MAX_ATTEMPTS (default 3), RETRY_BACKOFF_MS (default 100),
//   MODE: "complete" (default) | "fail" (retryable failure every time) | "hang" (claim, report progress
//         every PROGRESS_MS, never finish — for being killed), WORK_MS (time spent per item, default 0),
//   MAX_ITEMS (stop after completing this many, default unlimited).
// Stops on SIGTERM or stdin end: closes the queue (unclaimed prefetched offers go back) and exits 0.
import { Fabric, natsSettingsFromEnv } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { WorkQueue } from "@loominal/warp";

const env = process.env;
const num = (name, fallback) => (env[name] ? Number(env[name]) : fallback);
const mode = env.MODE ?? "complete";
const capability = env.CAPABILITY ?? "scenario";
const workMs = num("WORK_MS", 0);
const maxItems = num("MAX_ITEMS", Number.POSITIVE_INFINITY);
const agentId = env.AGENT_ID ?? randomId();

const out = (event, fields = {}) =>
  process.stdout.write(`${JSON.stringify({ event, agentId, pid: process.pid, ...fields })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const fabric = Fabric.start({
  // NATS_URL and the credentials (NATS_USER / NATS_PASSWORD, from which the inbox prefix follows).
  nats: natsSettingsFromEnv(env),
  name: `claimer-${process.pid}`,
});
const work = new WorkQueue({
  fabric,
  projectId: env.PROJECT_ID,
  agentId,
  userId: "scenario-user",
  settings: {
    ...warpConfigSchema.parse({}).work,
    ackWaitMs: num("ACK_WAIT_MS", 2_000),
    maxAttempts: num("MAX_ATTEMPTS", 3),
    retryBackoffMs: num("RETRY_BACKOFF_MS", 100),
  },
  prefetch: num("PREFETCH", 1),
  connectTimeoutMs: 2_000,
});

let stopping = false;
let completed = 0;
const stop = () => {
  stopping = true;
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();

/** Calls `fn` until it succeeds; NATS being away is waited out, anything else ends the attempt. */
async function persist(what, workId, fn) {
  for (let attempt = 0; !stopping || attempt === 0; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err?.code === "nats_unavailable" || err?.code === "timeout") {
        out("retrying", { what, workId, code: err.code });
        await sleep(200);
        continue;
      }
      out("rejected", { what, workId, code: err?.code ?? "internal", message: String(err?.message ?? err) });
      return undefined;
    }
  }
  return undefined;
}

async function lane() {
  while (!stopping && completed < maxItems) {
    let item;
    try {
      item = await work.claim({ capability, timeoutMs: 1_000 });
    } catch (err) {
      out("claim-error", { code: err?.code ?? "internal", message: String(err?.message ?? err) });
      await sleep(200);
      continue;
    }
    if (!item) continue;
    out("claimed", {
      workId: item.workId,
      taskId: item.taskId,
      attempt: item.attempts,
      claimId: item.claim.claimId,
    });
    if (mode === "hang") {
      for (;;) {
        await sleep(num("PROGRESS_MS", 300));
        await work.progress(item.workId, "still working").catch(() => undefined);
      }
    }
    if (workMs > 0) await sleep(workMs);
    if (mode === "fail") {
      const failed = await persist("fail", item.workId, () =>
        work.fail(item.workId, `failure on attempt ${item.attempts}`),
      );
      if (failed) out("failed", { workId: item.workId, attempt: item.attempts, status: failed.status });
      continue;
    }
    const done = await persist("complete", item.workId, () =>
      work.complete(item.workId, { by: agentId, attempt: item.attempts }),
    );
    if (done) {
      completed++;
      out("completed", { workId: item.workId, taskId: item.taskId, attempt: item.attempts });
    }
  }
}

out("started", { mode, capability });
await Promise.all(Array.from({ length: num("LANES", 1) }, lane));
await work.close();
await fabric.close();
out("stopped", { completed });
process.exit(0);
