import { defineTool } from "@loominal/mcp-kit";
import { agentViewSchema, nameToken, scopeSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function registryRegisterTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_registry_register",
    title: "Register this agent",
    description:
      "Registers you in the project's agent registry so others can discover you and send you direct messages. Heartbeats then keep you online until this process ends. Calling it again updates the registration.",
    input: z.strictObject({
      agentType: nameToken("agent type").describe("What kind of agent you are, e.g. 'claude-code'"),
      capabilities: z
        .array(nameToken("capability"))
        .max(64)
        .optional()
        .describe("What you can do, e.g. ['typescript']"),
      boundaries: z
        .array(nameToken("boundary"))
        .max(64)
        .optional()
        .describe("Boundaries you work in; none means all"),
      scope: scopeSchema.optional().describe("Who may discover you (default team)"),
      maxConcurrentTasks: z.int().min(1).max(1000).optional().describe("Tasks you take at once (default 1)"),
    }),
    output: z.object({ agent: agentViewSchema }),
    annotations: { idempotentHint: true },
    handler: async (input) =>
      warp.run(async () => {
        const agent = await warp.registry.register({
          agentType: input.agentType,
          ...(input.capabilities ? { capabilities: input.capabilities } : {}),
          ...(input.boundaries ? { boundaries: input.boundaries } : {}),
          ...(input.scope ? { scope: input.scope } : {}),
          ...(input.maxConcurrentTasks !== undefined ? { maxConcurrentTasks: input.maxConcurrentTasks } : {}),
        });
        return {
          data: { agent },
          text: `Registered ${agent.handle} (${agent.agentType}, agentId ${agent.agentId}); heartbeat every ${agent.heartbeatIntervalMs} ms.`,
        };
      }),
  });
}
