import { processContext } from "./context.js";
import { runHook } from "./hook-run.js";

/**
 * `loominal hook <event>` as a process runs it; returns the exit code. The build bundles this entry and
 * everything it imports into one file (dist/hook.bundle.cjs, scripts/bundle-hook.mjs): a hook starts on
 * every prompt and tool call, and one file loads several times faster than the hundreds of modules
 * behind it. `input` is the hook input when stdin was read already.
 */
export async function hookMain(event: string, input?: string): Promise<number> {
  try {
    await runHook(processContext(), event, input);
    return 0;
  } catch (err) {
    process.stderr.write(`loominal: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}
