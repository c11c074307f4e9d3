import { z } from "zod";

/**
 * Who may read a record.
 * - `private`: the writing agent, in this project only.
 * - `personal`: the writing user (same `userId`), in every project.
 * - `team`: every agent of the project.
 * - `public`: every agent of every project.
 */
export const SCOPES = ["private", "personal", "team", "public"] as const;
export const scopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof scopeSchema>;

/** Who wrote a record, as stored beside it. */
export interface Owner {
  projectId: string;
  agentId: string;
  userId: string;
}

/** Who is reading. */
export type Reader = Owner;

/** Whether `reader` may read a record written by `owner` with `scope`. The only scope rule in the codebase. */
export function canRead(scope: Scope, owner: Owner, reader: Reader): boolean {
  switch (scope) {
    case "private":
      return owner.projectId === reader.projectId && owner.agentId === reader.agentId;
    case "personal":
      return owner.userId === reader.userId;
    case "team":
      return owner.projectId === reader.projectId;
    case "public":
      return true;
  }
}

/** The scopes a reader sees by default when it names none. */
export const DEFAULT_READ_SCOPES: readonly Scope[] = SCOPES;
