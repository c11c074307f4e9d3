#!/usr/bin/env node
import { createLogger, loadConfig } from "@loominal/fabric";
import { runStdio } from "@loominal/mcp-kit";
import { isLoominalError } from "@loominal/protocol";
import { createShuttleServer } from "./mcp/server.js";
import { openShuttle } from "./open.js";

const logger = createLogger({ name: "loominal-shuttle", destination: "stderr" });

async function main(): Promise<void> {
  const config = loadConfig();
  const opened = await openShuttle({ config, logger });
  logger.info({ projectId: config.projectId, workDir: opened.shuttle.workDir.root }, "shuttle starting");
  const server = createShuttleServer({ shuttle: opened.shuttle });
  await runStdio(server, { logger, onShutdown: () => opened.close() });
}

main().catch((err: unknown) => {
  const message = isLoominalError(err)
    ? `${err.code}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
  process.stderr.write(`loominal-shuttle: ${message}\n`);
  process.exit(1);
});
