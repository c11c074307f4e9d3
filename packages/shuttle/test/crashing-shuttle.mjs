// A Shuttle server process that dies (SIGKILL: no cleanup, no final save) right after its N-th offer
// reached Warp, i.e. between an offer and the save of the record that follows it. It plans and spawns
// SHUTTLE_PLAN (JSON subtasks) and writes the orchestration id to SHUTTLE_ID_FILE first.
//
// Environment: LOOMINAL_PROJECT_DIR / NATS_URL / LOOMINAL_AGENT_NAME as for any Loominal process;
// SHUTTLE_PLAN; SHUTTLE_ID_FILE; SHUTTLE_KILL_AFTER_OFFERS (default 1).
import { writeFileSync } from "node:fs";
import { Fabric, loadConfig, silentLogger } from "@loominal/fabric";
import { WorkQueue } from "@loominal/warp";
import { OrchestrationStore, resolveWorkDir, Shuttle, WorkDir } from "../dist/index.js";

const config = loadConfig();
const fabric = await Fabric.connect({ nats: config.nats, name: "shuttle-test crashing-shuttle" });
const queue = new WorkQueue({
  fabric,
  projectId: config.projectId,
  agentId: config.agentId,
  userId: config.userId,
  settings: config.file.warp.work,
});
const killAfter = Number(process.env.SHUTTLE_KILL_AFTER_OFFERS ?? "1");
let offers = 0;
const port = {
  async offer(input) {
    const item = await queue.offer(input);
    offers++;
    if (offers >= killAfter) process.kill(process.pid, "SIGKILL");
    return item;
  },
  get: (workId) => queue.get(workId),
  cancel: (workId, reason) => queue.cancel(workId, reason),
  watchEvents: (handler) => queue.watchEvents(handler),
};
const workDir = await WorkDir.open(resolveWorkDir(config));
const store = new OrchestrationStore({
  workDir,
  fabric,
  projectId: config.projectId,
  logger: silentLogger(),
});
const shuttle = new Shuttle({
  fabric,
  projectId: config.projectId,
  agentId: config.agentId,
  store,
  queue: port,
});
await shuttle.start();
const outcome = await shuttle.assess("Survive the parent", JSON.parse(process.env.SHUTTLE_PLAN ?? "[]"));
if (outcome.kind !== "plan") process.exit(2);
writeFileSync(process.env.SHUTTLE_ID_FILE ?? "/dev/null", outcome.record.orchestrationId);
await shuttle.spawn(outcome.record.orchestrationId);
// Reached only if fewer offers than SHUTTLE_KILL_AFTER_OFFERS were made.
process.exit(3);
