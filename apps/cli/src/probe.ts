import { Fabric, type NatsSettings, redactUrl } from "@loominal/fabric";

/** What a connection attempt found at a NATS URL. */
export type NatsProbe =
  | { reachable: true; url: string; version: string; jetstream: boolean }
  | { reachable: false; url: string; reason: string };

/**
 * Connects once, reads what the server announced (version, JetStream) and disconnects.
 * Never throws for an unreachable server: that is an answer here, not a failure.
 */
export async function probeNats(nats: NatsSettings): Promise<NatsProbe> {
  let fabric: Fabric;
  try {
    fabric = await Fabric.connect({ nats, name: "loominal-cli" });
  } catch (err) {
    return { reachable: false, url: urlOf(nats), reason: reasonOf(err) };
  }
  try {
    const info = fabric.nc.info;
    return {
      reachable: true,
      url: fabric.url,
      version: info?.version ?? "unknown",
      jetstream: info?.jetstream === true,
    };
  } finally {
    await fabric.close();
  }
}

function urlOf(nats: NatsSettings): string {
  return nats.servers.map(redactUrl).join(",");
}

function reasonOf(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (cause instanceof Error) return cause.message || cause.name;
  return String(cause);
}
