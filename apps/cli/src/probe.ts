import { Fabric, isAuthError, isUnavailableError, type NatsSettings, redactUrl } from "@loominal/fabric";

/**
 * What a connection attempt found at a NATS URL:
 * - `ready`: it answers, and JetStream works for this account;
 * - `no-jetstream`: it answers, but JetStream is off (server or account);
 * - `refused`: it answers, but refuses the credentials (or their absence);
 * - `failed`: something answers, but the connection failed otherwise (TLS, protocol);
 * - `unreachable`: nothing answers there.
 */
export type NatsProbe =
  | { kind: "ready"; reachable: true; url: string; version: string; jetstream: true }
  | { kind: "no-jetstream"; reachable: true; url: string; version: string; jetstream: false; reason: string }
  | { kind: "refused"; reachable: true; url: string; reason: string }
  | { kind: "failed"; reachable: true; url: string; reason: string }
  | { kind: "unreachable"; reachable: false; url: string; reason: string };

/**
 * Connects once, reads what the server announced (version, JetStream), asks JetStream for this account's
 * info, and disconnects. Never throws for a server that is not usable: that is an answer here.
 */
export async function probeNats(nats: NatsSettings): Promise<NatsProbe> {
  const url = nats.servers.map(redactUrl).join(",");
  let fabric: Fabric;
  try {
    fabric = await Fabric.connect({ nats, name: "loominal-cli", requestTimeoutMs: 2_000 });
  } catch (err) {
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const reason = reasonOf(cause);
    if (isAuthError(cause)) return { kind: "refused", reachable: true, url, reason };
    if (isUnavailableError(cause) || isNetworkError(cause))
      return { kind: "unreachable", reachable: false, url, reason };
    return { kind: "failed", reachable: true, url, reason };
  }
  try {
    const version = fabric.nc.info?.version ?? "unknown";
    if (fabric.nc.info?.jetstream !== true) {
      return {
        kind: "no-jetstream",
        reachable: true,
        url: fabric.url,
        version,
        jetstream: false,
        reason: "the server runs without JetStream",
      };
    }
    try {
      await (await fabric.jsm()).getAccountInfo();
    } catch (err) {
      return {
        kind: "no-jetstream",
        reachable: true,
        url: fabric.url,
        version,
        jetstream: false,
        reason: `JetStream does not answer for this account (${reasonOf(err)})`,
      };
    }
    return { kind: "ready", reachable: true, url: fabric.url, version, jetstream: true };
  } finally {
    await fabric.close();
  }
}

/** Connection-level failures that mean "nothing listens there" (refused, reset, no such host). */
function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = "code" in err && typeof err.code === "string" ? err.code : "";
  return /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT)$/.test(code);
}

function reasonOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
