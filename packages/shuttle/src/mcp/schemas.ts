import {
  orchestrationCheckpointSchema,
  orchestrationPhaseSchema,
  orchestrationRecordSchema,
  orchestrationTransitionSchema,
  subtaskStatusSchema,
} from "@loominal/protocol";
import { z } from "zod";
import type { Shuttle } from "../orchestrator.js";

/** What every Shuttle tool needs. */
export interface ShuttleToolDeps {
  shuttle: Shuttle;
}

export const orchestrationIdInput = z
  .string()
  .regex(
    /^[0-9a-f]{32}$/,
    "orchestrationId must be the 32 lower-case hex characters shuttle_assess_task returned",
  )
  .describe("The id shuttle_assess_task returned");

export const summarySchema = z.object({
  orchestrationId: z.string(),
  task: z.string(),
  phase: orchestrationPhaseSchema,
  createdAt: z.string(),
  updatedAt: z.string(),
  subtasks: z.int(),
  completed: z.int(),
  failed: z.int().describe("Subtasks whose work failed"),
  blocked: z.int().describe("Subtasks that will not run because a dependency failed or was cancelled"),
  outstanding: z.int().describe("Subtasks waiting, offered or claimed"),
  local: z.boolean().describe("Whether the orchestration's directory is in this server's work dir"),
});

export const subtaskBriefSchema = z.object({
  id: z.string(),
  title: z.string(),
  capability: z.string(),
  dependsOn: z.array(z.string()),
  wave: z.int(),
  status: subtaskStatusSchema,
  workId: z.string().optional(),
});

export { orchestrationCheckpointSchema, orchestrationRecordSchema, orchestrationTransitionSchema };

/** Drops undefined fields so results match their output schema exactly. */
export function defined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
