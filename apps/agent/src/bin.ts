#!/usr/bin/env node
import { createLogger, Fabric, loadConfig } from "@loominal/fabric";
import { isLoominalError } from "@loominal/protocol";
import { Warp } from "@loominal/warp";
import { Command } from "commander";
import { resolveOptions } from "./options.js";
import { Worker } from "./worker.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

const program = new Command()
  .name("loominal-agent")
  .description(
    "A Loominal worker: registers with its capabilities, claims work, runs --command once per item (the item in LOOMINAL_WORK_* variables and as JSON on stdin), and reports the result. Exit code 75 means retryable.",
  )
  .option(
    "--capability <name>",
    "capability to claim work of (repeatable; env LOOMINAL_CAPABILITY, comma-separated)",
    collect,
  )
  .option(
    "--boundary <name>",
    "boundary to claim work in (repeatable; env LOOMINAL_BOUNDARY; default: default)",
    collect,
  )
  .option(
    "--agent-type <type>",
    "agent type to register as, e.g. claude-code (env LOOMINAL_AGENT_TYPE; default custom)",
  )
  .option("--command <shell>", "command run per item through /bin/sh -c (env LOOMINAL_COMMAND)")
  .option("--concurrency <n>", "items worked on at once (env LOOMINAL_CONCURRENCY; default 1)")
  .option(
    "--idle-timeout <duration>",
    "exit after this long without work, e.g. 30s, 10m (env LOOMINAL_IDLE_TIMEOUT; default never)",
  )
  .option(
    "--max-output <bytes>",
    "command output kept in the result; the rest stays in the output file (default 65536)",
  )
  .option("--output-dir <dir>", "where each item's full output is written (default .loominal/agent-output)")
  .action(async (flags) => {
    const logger = createLogger({ name: "loominal-agent", destination: "stderr" });
    const options = resolveOptions(flags, process.env, process.cwd());
    // Each spun-up agent gets its own identity; a hand-started one defaults to the name "agent".
    const env = {
      ...process.env,
      LOOMINAL_AGENT_NAME:
        process.env.LOOMINAL_AGENT_NAME ??
        (options.spinUpId ? `agent-${options.spinUpId.slice(0, 12)}` : "agent"),
    };
    const config = loadConfig({ env });
    const fabric = await Fabric.connect({
      nats: config.nats,
      logger,
      name: `loominal-agent ${config.projectId}`,
    });
    const warp = await Warp.open({ config, fabric, logger, workMaintenance: true });
    const worker = new Worker(options, warp, fabric, logger);
    let signals = 0;
    const onSignal = (signal: string) => {
      signals++;
      logger.info(
        { signal },
        signals === 1
          ? "finishing the items in hand, then exiting (again to hand them back now)"
          : "handing items back",
      );
      worker.stop("signal", signals === 1);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
    await worker.run();
    await warp.close();
    await fabric.close();
    setTimeout(() => process.exit(0), 50);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = isLoominalError(err) ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`loominal-agent: ${message}\n`);
  setTimeout(() => process.exit(isLoominalError(err) && err.code === "invalid_config" ? 2 : 1), 50);
});
