import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { hookViaSessionWarp } from "./hook-fast.js";

// `node dist/hook.cjs <event>`, the command `loominal mcp-config --hooks` writes: this file bundled into one
// CommonJS file (scripts/bundle-hook.mjs), which Node starts faster than an ES module and its imports. It
// asks the Warp server of the session; only without an answer does it load the rest of the hook.
async function main(): Promise<void> {
  const event = process.argv[2] ?? "";
  const fast = await hookViaSessionWarp(event);
  if ("answered" in fast) return;
  // argv[1] is this file, in dist/ beside the rest of the CLI.
  const alone = pathToFileURL(join(dirname(process.argv[1] ?? "."), "hook-alone.js")).href;
  const { hookAlone } = (await import(alone)) as typeof import("./hook-alone.js");
  process.exitCode = await hookAlone(event, fast.input);
}

void main();
