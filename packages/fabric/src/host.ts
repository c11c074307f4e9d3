import { execFileSync } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { ConfigError, NATS_SERVER_INSTALL_HINT, natsServerCandidates } from "@loominal/protocol";

export { ancestorPids, processAlive } from "./proc.js";

/**
 * A process's start time in clock ticks since boot (Linux, `/proc/<pid>/stat` field 22), or undefined
 * where /proc does not say. With the pid it names one process: a pid reused later has another start time.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm) " start at field 3; starttime is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** The host's boot id (Linux, `/proc/sys/kernel/random/boot_id`), or undefined where there is none. */
export function hostBootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The command line of a process (Linux, `/proc/<pid>/cmdline`), or undefined where /proc does not say. */
export function processCommandLine(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw.split("\0").filter((part) => part !== "");
  } catch {
    return undefined;
  }
}

/** Where the nats-server binary is (see natsServerCandidates), or undefined when there is none. */
export function findNatsServer(env: Record<string, string | undefined> = process.env): string | undefined {
  const candidates = natsServerCandidates(env);
  if (env.NATS_SERVER_BIN?.trim()) return candidates[0];
  return candidates.find(isExecutableFile);
}

/** Like findNatsServer, but a missing binary is a ConfigError that says how to install one. */
export function requireNatsServer(env: Record<string, string | undefined> = process.env): string {
  const bin = findNatsServer(env);
  if (bin === undefined) throw new ConfigError(NATS_SERVER_INSTALL_HINT);
  if (!isExecutableFile(bin))
    throw new ConfigError(`NATS_SERVER_BIN points to ${bin}, which is not an executable file`);
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

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
