import { AgentInstance, ancestorPids, Fabric, type LoominalConfig } from "@loominal/fabric";

/** How long a hook or guard waits for NATS before giving up (and letting the session or commit go on). */
export const QUICK_CONNECT_MS = 1_500;

/**
 * The agent a short-lived helper of a session (git hook, Claude Code hook) acts as: the identity the Warp
 * server of the same session holds in this directory (found through the process tree, taking no lock),
 * else the directory's base identity.
 */
export function sessionAgent(config: LoominalConfig): { agentId: string; agentName: string } {
  const { agentId, agentName } = AgentInstance.locate(config, { ancestors: ancestorPids() });
  return { agentId, agentName };
}

/** Connects, or resolves undefined once `timeoutMs` pass without a connection (the caller then warns). */
export async function quickConnect(
  config: LoominalConfig,
  timeoutMs = QUICK_CONNECT_MS,
): Promise<Fabric | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const connecting = Fabric.connect({ nats: config.nats, requestTimeoutMs: timeoutMs });
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    const fabric = await Promise.race([connecting, late]);
    if (!fabric) connecting.then((f) => f.close()).catch(() => undefined);
    return fabric;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
