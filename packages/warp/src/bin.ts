#!/usr/bin/env node
import { createLogger, Fabric, loadConfig } from "@loominal/fabric";
import { runServerMain, runStdio, toolProfileFromEnv } from "@loominal/mcp-kit";
import { HookSocketServer } from "./hook/server.js";
import { createWarpServer } from "./mcp/server.js";
import { Warp } from "./warp.js";

// stdout is the MCP protocol: everything else goes to stderr.
const logger = createLogger({ name: "loominal-warp", destination: "stderr" });

await runServerMain("loominal-warp", logger, async () => {
  const config = loadConfig();
  const tools = toolProfileFromEnv();
  // Connects in the background: the server starts and lists its tools even while NATS is unreachable.
  const fabric = Fabric.start({ nats: config.nats, logger, name: `loominal-warp ${config.projectId}` });
  const warp = await Warp.open({ config, fabric, logger }).catch(async (err: unknown) => {
    await fabric.close();
    throw err;
  });
  logger.info(
    {
      projectId: warp.projectId,
      agentId: warp.agentId,
      instance: warp.identity.instance,
      nats: fabric.url,
      tools,
    },
    "warp starting",
  );
  // The Claude Code hooks of this session ask this server instead of connecting to NATS themselves.
  const hooks = await HookSocketServer.start(warp);
  await runStdio(createWarpServer(warp, { tools }), {
    logger,
    onShutdown: async () => {
      await hooks?.close();
      await warp.close();
      await fabric.close();
    },
  });
});
