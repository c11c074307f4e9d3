#!/usr/bin/env node
import { createLogger, GracefulShutdown } from "@loominal/fabric";
import { isLoominalError } from "@loominal/protocol";
import { loadRunnerConfig } from "./env.js";
import { startRunner } from "./main.js";

const logger = createLogger({ name: "loominal-runner", destination: "stdout" });

async function main(): Promise<void> {
  const config = loadRunnerConfig();
  const runner = await startRunner(config, logger);
  // Ready line for scripts and tests: the URL and replica id, on stdout as JSON.
  process.stdout.write(`${JSON.stringify({ ready: true, url: runner.url, replica_id: config.replicaId })}\n`);
  const shutdown = new GracefulShutdown({ logger, timeoutMs: config.drainTimeoutMs + 10_000 }).install();
  shutdown.register("runner", () => runner.close());
}

main().catch((err: unknown) => {
  const message = isLoominalError(err) ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`loominal-runner: ${message}\n`);
  process.exit(1);
});
