#!/usr/bin/env node

// A Claude Code hook runs on every prompt and tool call: it loads only what a hook needs, bundled.
if (process.argv[2] === "hook" && process.argv.length === 4) {
  const { hookMain } = await loadHookMain();
  process.exitCode = await hookMain(process.argv[3] ?? "");
} else {
  const { processContext } = await import("./context.js");
  const { runCli } = await import("./program.js");
  process.exitCode = await runCli(processContext(), process.argv);
}

/** The hook's bundle; without one (a build by `tsc` alone), the same code from its modules. */
async function loadHookMain(): Promise<typeof import("./hook-main.js")> {
  try {
    return (await import(
      new URL("./hook.bundle.js", import.meta.url).href
    )) as typeof import("./hook-main.js");
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ERR_MODULE_NOT_FOUND") throw err;
    return import("./hook-main.js");
  }
}
