import { type LoominalConfig, loadConfig } from "@loominal/fabric/config";
import type { CliContext } from "./context.js";

/**
 * Project configuration (env over `.loominal.json` over defaults); a bad value throws ConfigError. Apart
 * from context.ts because it loads the fabric: only the commands that need the configuration import it.
 */
export function projectConfig(ctx: CliContext): LoominalConfig {
  return loadConfig({ cwd: ctx.cwd, env: ctx.env });
}
