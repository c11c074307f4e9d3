#!/usr/bin/env node
import { AgentInstance, createLogger, loadConfig } from "@loominal/fabric";
import { runServerMain, runStdio, toolProfileFromEnv } from "@loominal/mcp-kit";
import { createShuttleServer } from "./mcp/server.js";
import { openShuttle } from "./open.js";

// stdout is the MCP protocol: everything else goes to stderr.
const logger = createLogger({ name: "loominal-shuttle", destination: "stderr" });

await runServerMain("loominal-shuttle", logger, async () => {
  const loaded = loadConfig();
  const tools = toolProfileFromEnv();
  // The same identity mechanism as Warp and Pattern: one agent per session in a directory.
  const instance = AgentInstance.acquire({ config: loaded, role: "shuttle", logger });
  const config = instance.applyTo(loaded);
  const opened = await openShuttle({ config, logger }).catch(async (err: unknown) => {
    await instance.release();
    throw err;
  });
  logger.info(
    { projectId: config.projectId, agentId: config.agentId, workDir: opened.shuttle.workDir.root, tools },
    "shuttle starting",
  );
  await runStdio(createShuttleServer({ shuttle: opened.shuttle }, { tools }), {
    logger,
    onShutdown: async () => {
      await opened.close();
      await instance.release();
    },
  });
});
