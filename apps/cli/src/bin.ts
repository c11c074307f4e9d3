#!/usr/bin/env node
import { processContext } from "./context.js";

// A Claude Code hook runs on every prompt and tool call: it skips loading the rest of the command tree.
if (process.argv[2] === "hook" && process.argv.length === 4) {
  const { runHook } = await import("./hook-run.js");
  try {
    await runHook(processContext(), process.argv[3] ?? "");
  } catch (err) {
    process.stderr.write(`loominal: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  }
} else {
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(processContext(), process.argv);
}
