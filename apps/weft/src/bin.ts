#!/usr/bin/env node
import { createLogger } from "@loominal/fabric";
import { isLoominalError } from "@loominal/protocol";
import { Command } from "commander";
import { runWeftMcp } from "./mcp/server.js";
import { startWeft } from "./serve.js";

const program = new Command()
  .name("weft")
  .description("Weft: the Loominal coordinator (REST API, NATS request/reply, spin-up and idle shutdown).");

program
  .command("serve")
  .description("run the Weft service (configured by WEFT_* variables and WEFT_CONFIG; see docs/weft.md)")
  .action(async () => {
    const logger = createLogger({ name: "weft", destination: "stdout" });
    const running = await startWeft({ logger });
    const stop = (signal: string) => {
      logger.info({ signal }, "stopping");
      running.stop().then(
        () => setTimeout(() => process.exit(0), 50),
        (err: unknown) => {
          logger.error({ err: String(err) }, "error while stopping");
          setTimeout(() => process.exit(1), 50);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });

program
  .command("mcp")
  .description("run the Weft MCP server on stdio: a client of a running Weft over NATS (coord.<p>.<op>)")
  .action(async () => {
    await runWeftMcp();
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = isLoominalError(err)
    ? `${err.code}: ${err.message}`
    : err instanceof Error
      ? err.message
      : String(err);
  process.stderr.write(`weft: ${message}\n`);
  setTimeout(() => process.exit(1), 50);
});
