// A Shuttle test worker: a real process built on the Warp work queue. It claims work by capability,
// writes the subtask's output file to contextData.shuttle.outputPath and completes the item.
//
// Environment: LOOMINAL_PROJECT_DIR / NATS_URL / LOOMINAL_AGENT_NAME as for any Loominal process;
// WORKER_CAPABILITIES (comma-separated); WORKER_LOG (a JSON-lines file this worker appends to);
// WORKER_HANG_ON (a subtask id this worker claims and then never finishes: the test kills it);
// WORKER_FAIL_ON (a subtask id this worker fails without retry); WORKER_SKIP_OUTPUT_ON (a subtask id
// completed without writing an output); WORKER_LINK_OUTPUT (JSON: subtask id → a path its output file is
// made a symbolic link to, to test that Shuttle does not read through it); WORKER_EXTRA (JSON: subtask id → extra lines for its output);
// WORKER_CLOCK_SKEW_MS (this process's clock runs that many ms off, e.g. -60000: a host whose clock is
// behind, so every ledger timestamp it writes is in the past).
import { appendFileSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { Fabric, loadConfig } from "@loominal/fabric";
import { WorkQueue } from "@loominal/warp";

const skewMs = Number(process.env.WORKER_CLOCK_SKEW_MS ?? "0");
if (skewMs !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  globalThis.Date = class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(realNow() + skewMs);
      else super(...args);
    }
    static now() {
      return realNow() + skewMs;
    }
  };
}

const config = loadConfig();
const name = config.agentName;
const capabilities = (process.env.WORKER_CAPABILITIES ?? "research").split(",").filter(Boolean);
const logFile = process.env.WORKER_LOG;
const extra = JSON.parse(process.env.WORKER_EXTRA ?? "{}");
const links = JSON.parse(process.env.WORKER_LINK_OUTPUT ?? "{}");

function log(entry) {
  if (logFile)
    appendFileSync(
      logFile,
      `${JSON.stringify({ worker: name, pid: process.pid, at: new Date().toISOString(), ...entry })}\n`,
    );
}

const fabric = await Fabric.connect({ nats: config.nats, name: `shuttle-test-worker ${name}` });
const queue = new WorkQueue({
  fabric,
  projectId: config.projectId,
  agentId: config.agentId,
  userId: config.userId,
  settings: config.file.warp.work,
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await queue.close().catch(() => undefined);
  await fabric.close().catch(() => undefined);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());

log({ event: "ready" });
while (!stopping) {
  for (const capability of capabilities) {
    if (stopping) break;
    let item;
    try {
      item = await queue.claim({ capability, timeoutMs: 300 });
    } catch (err) {
      log({ event: "claim-error", error: String(err) });
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    if (!item) continue;
    const ctx = item.contextData?.shuttle;
    if (!ctx) {
      await queue.fail(item.workId, "not a Shuttle work item", false);
      continue;
    }
    const depsPresent = ctx.dependencies.every((d) => existsSync(d.outputPath));
    log({
      event: "claimed",
      subtaskId: ctx.subtaskId,
      workId: item.workId,
      attempt: item.claim.attempt,
      depsPresent,
    });
    if (process.env.WORKER_HANG_ON === ctx.subtaskId) {
      log({ event: "hanging", subtaskId: ctx.subtaskId });
      // Keep the claim (and the process) until the test kills it.
      await new Promise(() => undefined);
    }
    if (process.env.WORKER_FAIL_ON === ctx.subtaskId) {
      await queue.fail(item.workId, `worker ${name} could not do ${ctx.subtaskId}`, false);
      log({ event: "failed", subtaskId: ctx.subtaskId });
      continue;
    }
    if (links[ctx.subtaskId]) {
      symlinkSync(links[ctx.subtaskId], ctx.outputPath);
    } else if (process.env.WORKER_SKIP_OUTPUT_ON !== ctx.subtaskId) {
      const lines = [
        `# ${ctx.title}`,
        "",
        `Produced by ${name} for ${ctx.subtaskId}.`,
        ...(extra[ctx.subtaskId] ?? []),
      ];
      writeFileSync(ctx.outputPath, `${lines.join("\n")}\n`);
    }
    await queue.complete(item.workId, { worker: name, subtaskId: ctx.subtaskId });
    log({ event: "completed", subtaskId: ctx.subtaskId, workId: item.workId });
  }
}
