// Offers one work item with LOOMINAL_TEST_CRASH_AT set, so the process dies at that point of the offer.
// Usage: node offer-and-crash.mjs <natsUrl> <projectId>
import { Fabric } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { WorkQueue } from "../dist/index.js";

const [url, projectId] = process.argv.slice(2);
const fabric = await Fabric.connect({ nats: { servers: [url] } });
const work = new WorkQueue({
  fabric,
  projectId,
  agentId: randomId(),
  userId: randomId(),
  settings: warpConfigSchema.parse({}).work,
});
const item = await work.offer({
  taskId: "stranded",
  description: "offered by a process that dies",
  capability: "typescript",
});
// Only reached when no crash point was set.
process.stdout.write(`${item.workId}\n`);
await work.close();
await fabric.close();
