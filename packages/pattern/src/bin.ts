#!/usr/bin/env node
import { AgentInstance, createLogger, Fabric, loadConfig } from "@loominal/fabric";
import { runServerMain, runStdio, toolProfileFromEnv } from "@loominal/mcp-kit";
import { createPatternServer, PATTERN_SERVER_NAME } from "./mcp/server.js";
import { MemoryStore, maxPublicMemoriesFromEnv } from "./store.js";

// stdout is the MCP protocol: everything else goes to stderr.
const logger = createLogger({ name: PATTERN_SERVER_NAME, destination: "stderr" });

await runServerMain(PATTERN_SERVER_NAME, logger, async () => {
  // A bad configuration stops the process with the message naming the variable or key.
  const loaded = loadConfig();
  const maxPublicMemories = maxPublicMemoriesFromEnv(process.env);
  const tools = toolProfileFromEnv();
  // The same identity mechanism as Warp: a second session in this directory is instance 2, with its own
  // agentId and so its own private memories.
  const instance = AgentInstance.acquire({ config: loaded, role: "pattern", logger });
  const config = instance.applyTo(loaded);
  // Start without waiting for NATS: tools answer "NATS unreachable at …" until it is there.
  const fabric = Fabric.start({
    nats: config.nats,
    logger,
    name: `${PATTERN_SERVER_NAME}:${config.agentName}`,
  });
  const store = MemoryStore.fromConfig(
    fabric,
    config,
    logger,
    maxPublicMemories === undefined ? {} : { maxPublicMemories },
  );
  logger.info(
    { projectId: config.projectId, agentId: config.agentId, instance: instance.instance, tools },
    "pattern starting",
  );
  await runStdio(createPatternServer({ store, projectDir: config.projectDir }, { tools }), {
    logger,
    onShutdown: async () => {
      await store.close();
      await fabric.close();
      await instance.release();
    },
  });
});
