#!/usr/bin/env node
import { fileURLToPath } from "node:url";

// A Claude Code hook runs on every prompt and tool call. It first asks the Warp server of its session,
// loading next to nothing (src/hook-fast.ts); without an answer it does the work itself, loading only
// what a hook needs from one bundled file compiled with a code cache (without the bundle, a build by
// `tsc` alone, from the modules).
if (process.argv[2] === "hook" && process.argv.length === 4) {
  const event = process.argv[3] ?? "";
  const { hookViaSessionWarp } = await import("./hook-fast.js");
  const fast = await hookViaSessionWarp(event);
  if ("input" in fast) {
    const { loadHookBundle } = await import("./hook-loader.js");
    const bundled = loadHookBundle(fileURLToPath(new URL("./hook.bundle.cjs", import.meta.url)));
    const { hookMain }: import("./hook-loader.js").HookMainModule =
      bundled?.main ?? (await import("./hook-main.js"));
    process.exitCode = await hookMain(event, fast.input);
    bundled?.saveCache();
  }
} else {
  const { processContext } = await import("./context.js");
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(processContext(), process.argv);
}
