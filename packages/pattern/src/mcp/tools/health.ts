import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import type { PatternToolDeps } from "../deps.js";

export function healthTool(deps: PatternToolDeps) {
  return defineTool({
    name: "pattern_health",
    title: "Pattern health",
    description:
      "Check the memory service: NATS connection (URL without credentials), your identity (projectId, agentId, userId), settings, the buckets and how many entries they hold. Works even when NATS is down.",
    input: z.strictObject({}),
    output: z.object({
      status: z.enum(["ok", "unavailable", "degraded"]),
      nats: z.object({
        url: z.string(),
        state: z.string(),
        serverVersion: z.string().optional(),
        error: z.string().optional(),
      }),
      identity: z.object({
        projectId: z.string(),
        agentId: z.string(),
        userId: z.string(),
        agentName: z.string().optional(),
      }),
      settings: z.object({
        ephemeralTtlMs: z.int(),
        maxCoreMemories: z.int(),
        maxPublicMemories: z.int(),
        maxTeamMemories: z.int(),
      }),
      buckets: z.array(
        z.object({
          role: z.string(),
          name: z.string(),
          exists: z.boolean(),
          values: z.int().optional(),
          bytes: z.int().optional(),
          ttlMs: z.int().optional(),
        }),
      ),
      views: z.array(
        z.object({
          bucket: z.string(),
          prefix: z.string(),
          memories: z.int(),
          invalidSkipped: z
            .int()
            .describe("Records skipped: invalid, or stored at a key that does not match them."),
          limit: z.int().optional().describe("Most memories this view holds (public only)."),
          dropped: z.int().optional().describe("Memories left out to stay within limit."),
        }),
      ),
    }),
    annotations: { readOnlyHint: true },
    handler: async () => {
      const h = await deps.store.health();
      const buckets = h.buckets.map(
        (b) => `${b.name}: ${b.exists ? `${b.values ?? 0} entries` : "not created yet"}`,
      );
      const text = [
        `Pattern ${h.status}; NATS ${h.nats.state} at ${h.nats.url}${h.nats.serverVersion ? ` (server ${h.nats.serverVersion})` : ""}.`,
        ...(h.nats.error ? [h.nats.error] : []),
        `project ${h.identity.projectId}, agent ${h.identity.agentId}, user ${h.identity.userId}.`,
        ...buckets,
      ].join("\n");
      return { data: h, text };
    },
  });
}
