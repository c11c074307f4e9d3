#!/usr/bin/env node
import { createLogger, Fabric, loadConfig } from "@loominal/fabric";
import { runStdio } from "@loominal/mcp-kit";
import { createPatternServer, PATTERN_SERVER_NAME } from "./mcp/server.js";
import { MemoryStore, maxPublicMemoriesFromEnv } from "./store.js";

const logger = createLogger({ name: PATTERN_SERVER_NAME, destination: "stderr" });

let config: ReturnType<typeof loadConfig>;
let maxPublicMemories: number | undefined;
try {
  config = loadConfig();
  maxPublicMemories = maxPublicMemoriesFromEnv(process.env);
} catch (err) {
  // A bad configuration stops the process with the message naming the variable or key.
  process.stderr.write(`${PATTERN_SERVER_NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}

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
const server = createPatternServer({ store, projectDir: config.projectDir });

await runStdio(server, {
  logger,
  onShutdown: async () => {
    await store.close();
    await fabric.close();
  },
});
