#!/usr/bin/env node
import { fileURLToPath } from "node:url";
import { type HookMainModule, loadHookBundle } from "./hook-loader.js";

// A Claude Code hook runs on every prompt and tool call: it loads only what a hook needs, from one
// bundled file compiled with a code cache (without the bundle, a build by `tsc` alone, from the modules).
if (process.argv[2] === "hook" && process.argv.length === 4) {
  const bundled = loadHookBundle(fileURLToPath(new URL("./hook.bundle.cjs", import.meta.url)));
  const { hookMain }: HookMainModule = bundled?.main ?? (await import("./hook-main.js"));
  process.exitCode = await hookMain(process.argv[3] ?? "");
  bundled?.saveCache();
} else {
  const { processContext } = await import("./context.js");
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(processContext(), process.argv);
}
