import { LoominalError } from "@loominal/protocol";

/** A channel that `.loominal.json` does not configure. */
export class UnknownChannelError extends LoominalError {
  override name = "UnknownChannelError";
  constructor(channel: string, known: readonly string[]) {
    super(
      "not_found",
      `channel ${JSON.stringify(channel)} is not configured; known channels: ${known.join(", ") || "(none)"}. Add it to warp.channels in .loominal.json to use it.`,
      { details: { channel, known } },
    );
  }
}

/** This agent has not called `warp_registry_register` (or has deregistered). */
export class NotRegisteredError extends LoominalError {
  override name = "NotRegisteredError";
  constructor(agentId: string, action: string) {
    super(
      "not_registered",
      `agent ${agentId} is not registered, so it cannot ${action}; call warp_registry_register first`,
      {
        details: { agentId },
      },
    );
  }
}

/** No registry entry this reader may see has that agentId. */
export class AgentNotFoundError extends LoominalError {
  override name = "AgentNotFoundError";
  constructor(agentId: string, projectId: string, options: { otherProjects?: boolean } = {}) {
    super(
      "not_found",
      options.otherProjects
        ? `no agent ${agentId} you may see is registered in project ${projectId}, nor in another project with scope public or personal; list agents with warp_registry_discover (scope public or personal searches other projects)`
        : `no agent ${agentId} is registered in project ${projectId} (or its scope hides it from you); list agents with warp_registry_discover`,
      { details: { agentId, projectId } },
    );
  }
}

/** Another live process holds this agent identity. */
/** An agent identity is held by another live process (defined in the fabric, where identities are kept). */
export { IdentityInUseError } from "@loominal/fabric";
