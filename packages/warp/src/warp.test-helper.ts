import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric, type LoominalConfig, loadConfig } from "@loominal/fabric";
import type { ProjectFileInput } from "@loominal/protocol";
import { tempDir } from "@loominal/testkit";
import { Warp } from "./warp.js";

/** A project directory with an optional `.loominal.json`, and the config a Warp there would load. */
export function projectConfig(
  natsUrl: string,
  projectId: string,
  options: { file?: ProjectFileInput; env?: Record<string, string>; dir?: string } = {},
): { config: LoominalConfig; dir: string; cleanup: () => void } {
  const tmp = options.dir ? { path: options.dir, cleanup: () => undefined } : tempDir("warp-proj-");
  if (options.file) writeFileSync(join(tmp.path, ".loominal.json"), JSON.stringify(options.file));
  const config = loadConfig({
    cwd: tmp.path,
    env: { NATS_URL: natsUrl, LOOMINAL_PROJECT_ID: projectId, ...options.env },
  });
  return { config, dir: tmp.path, cleanup: tmp.cleanup };
}

/** Opens a Warp on its own connection and waits until it is ready. */
export async function openWarp(
  config: LoominalConfig,
  lockDir: string,
): Promise<{ warp: Warp; fabric: Fabric; close: () => Promise<void> }> {
  const fabric = await Fabric.connect({ nats: config.nats });
  const warp = await Warp.open({ config, fabric, lockDir });
  await warp.ready(5_000);
  return {
    warp,
    fabric,
    close: async () => {
      await warp.close();
      await fabric.close();
    },
  };
}
