import { fileURLToPath } from "node:url";
import { type HookMainModule, loadHookBundle } from "./hook-loader.js";

/**
 * `loominal hook <event>` done in this process (no Warp server of the session answered): loads the hook's
 * bundle with its code cache (without the bundle, a build by `tsc` alone, from the modules) and runs it
 * on `input`, the hook input already read. Returns the exit code.
 */
export async function hookAlone(event: string, input: string): Promise<number> {
  const bundled = loadHookBundle(fileURLToPath(new URL("./hook.bundle.cjs", import.meta.url)));
  const { hookMain }: HookMainModule = bundled?.main ?? (await import("./hook-main.js"));
  const code = await hookMain(event, input);
  bundled?.saveCache();
  return code;
}
