import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The built CLI, exactly what `./loominal` runs. */
export const CLI_BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI in `cwd` with a clean Loominal environment (no NATS_* or LOOMINAL_* leaking in
 * from the shell that runs the tests) plus `env`; `nodeArgs` go to node before the CLI's file.
 */
export function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; nodeArgs?: string[] },
): Promise<CliRun> {
  if (!existsSync(CLI_BIN)) throw new Error(`${CLI_BIN} does not exist: build @loominal/cli first`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("NATS_") && !k.startsWith("LOOMINAL_")) env[k] = v;
  }
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI_BIN, ...args], {
      cwd: options.cwd,
      env,
      stdio: "pipe",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The `export NATS_URL=…` line that `up` prints. */
export function exportedUrl(stdout: string): string | undefined {
  return /export NATS_URL=(\S+)/.exec(stdout)?.[1];
}
