import { execFileSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ConfigError } from "@loominal/protocol";

/** Debian installs nats-server in /usr/sbin, which is often not on a non-root PATH. */
const FALLBACK_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];

/**
 * Where the nats-server binary is: `NATS_SERVER_BIN`, else PATH, else the usual system directories.
 * Returns undefined when there is none.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.NATS_SERVER_BIN?.trim();
  if (fromEnv) return fromEnv;
  const dirs = [...(env.PATH ?? "").split(delimiter).filter(Boolean), ...FALLBACK_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Like findNatsServer, but a missing binary is a ConfigError that says how to install one. */
export function requireNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const bin = findNatsServer(env);
  if (bin === undefined) {
    throw new ConfigError(
      "nats-server not found on PATH or in /usr/sbin. Install it (Debian/Ubuntu: sudo apt-get install nats-server), " +
        "or download it from https://github.com/nats-io/nats-server/releases and set NATS_SERVER_BIN to its path.",
    );
  }
  if (!isExecutable(bin)) {
    throw new ConfigError(`NATS_SERVER_BIN points to ${bin}, which is not an executable file`);
  }
  return bin;
}

/** The version a nats-server binary reports ("2.9.10"), or undefined if it cannot be run. */
export function natsServerVersionOf(bin: string): string | undefined {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 5_000 });
    return /v?(\d+\.\d+\.\d+\S*)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
