#!/usr/bin/env node

// `loominal hook <event>` runs on every prompt and tool call: it first asks the Warp server of its session,
// loading next to nothing (src/hook-fast.ts), and does the work itself only without an answer
// (src/hook-alone.ts). Hooks written by `loominal mcp-config --hooks` start dist/hook.cjs, the same
// bundled into one file.
if (process.argv[2] === "hook" && process.argv.length === 4) {
  const event = process.argv[3] ?? "";
  const { hookViaSessionWarp } = await import("./hook-fast.js");
  const fast = await hookViaSessionWarp(event);
  if ("input" in fast) {
    const { hookAlone } = await import("./hook-alone.js");
    process.exitCode = await hookAlone(event, fast.input);
  }
} else {
  const { processContext } = await import("./context.js");
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(processContext(), process.argv);
}
