/**
 * Where a nats-server binary may be, in the order to try: `NATS_SERVER_BIN` alone when set, else every
 * directory of PATH, then the usual system directories (Debian installs nats-server in /usr/sbin, which is
 * often not on a non-root PATH). Pure: callers check which candidate is an executable file.
 */
export function natsServerCandidates(env: Record<string, string | undefined>): string[] {
  const fromEnv = env.NATS_SERVER_BIN?.trim();
  if (fromEnv) return [fromEnv];
  const dirs = [...(env.PATH ?? "").split(":").filter(Boolean), ...NATS_SERVER_SYSTEM_DIRS];
  return [...new Set(dirs)].map((d) => `${d.replace(/\/+$/, "")}/nats-server`);
}

/** System directories searched for nats-server after PATH. */
export const NATS_SERVER_SYSTEM_DIRS = [
  "/usr/sbin",
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/bin",
] as const;

/** What to tell someone without a nats-server binary. */
export const NATS_SERVER_INSTALL_HINT =
  "nats-server not found on PATH or in /usr/sbin. Install it (Debian/Ubuntu: sudo apt-get install nats-server), " +
  "or download it from https://github.com/nats-io/nats-server/releases and set NATS_SERVER_BIN to its path.";
