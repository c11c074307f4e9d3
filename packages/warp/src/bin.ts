#!/usr/bin/env node
import { createLogger, Fabric, loadConfig } from "@loominal/fabric";
import { runStdio } from "@loominal/mcp-kit";
import { isLoominalError } from "@loominal/protocol";
import { createWarpServer } from "./mcp/server.js";
import { Warp } from "./warp.js";

// stdout is the MCP protocol: everything else goes to stderr.
const logger = createLogger({ name: "loominal-warp", destination: "stderr" });

async function main(): Promise<void> {
  const config = loadConfig();
  // Connects in the background: the server starts and lists its tools even while NATS is unreachable.
  const fabric = Fabric.start({ nats: config.nats, logger, name: `loominal-warp ${config.projectId}` });
  const warp = await Warp.open({ config, fabric, logger });
  logger.info(
    { projectId: warp.projectId, agentId: warp.agentId, instance: warp.identity.instance, nats: fabric.url },
    "warp starting",
  );
  await runStdio(createWarpServer(warp), {
    logger,
    onShutdown: async () => {
      await warp.close();
      await fabric.close();
    },
  });
}

main().catch((err: unknown) => {
  const message = isLoominalError(err)
    ? `${err.code}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
  logger.fatal({ err: message }, "loominal-warp could not start");
  process.stderr.write(`loominal-warp: ${message}\n`);
  // Let pino flush its asynchronous stderr writes before exiting.
  setTimeout(() => process.exit(1), 50);
});
