import { execFile } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";
import { natsServerBinary } from "./nats-server.js";

const run = promisify(execFile);
const DEPLOY_NATS = fileURLToPath(new URL("../../../deploy/nats/", import.meta.url));

/** `nats-server -t -c file`: parse and validate the configuration, then exit. */
async function configTest(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(natsServerBinary(), ["-t", "-c", file]);
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

const configs = [
  join(DEPLOY_NATS, "single.conf"),
  ...readdirSync(join(DEPLOY_NATS, "cluster"))
    .filter((f) => /^node-\d+\.conf$/.test(f))
    .map((f) => join(DEPLOY_NATS, "cluster", f)),
];

describe("deploy/nats configurations", () => {
  it("has a single-node config and three cluster nodes", () => {
    expect(configs.map((c) => c.slice(DEPLOY_NATS.length))).toEqual([
      "single.conf",
      "cluster/node-1.conf",
      "cluster/node-2.conf",
      "cluster/node-3.conf",
    ]);
  });

  it.each(configs.map((c) => [c.slice(DEPLOY_NATS.length), c]))(
    "nats-server -t accepts %s",
    async (_, file) => {
      const result = await configTest(file);
      expect(result.output).toContain("is valid");
      expect(result.ok).toBe(true);
    },
  );

  it("the check really validates: a misspelt block is refused", async () => {
    const dir = tempDir();
    try {
      const bad = join(dir.path, "bad.conf");
      writeFileSync(bad, 'listen: 127.0.0.1:4222\njetstrem { store_dir: "/tmp/x" }\n');
      const result = await configTest(bad);
      expect(result.ok).toBe(false);
      expect(result.output).toContain('unknown field "jetstrem"');
    } finally {
      dir.cleanup();
    }
  });
});
