import type { SubtaskPlan } from "@loominal/protocol";
import { PlanError } from "./errors.js";

/** The most subtasks one orchestration may have. */
export const MAX_SUBTASKS = 200;

/** A validated plan: subtasks in plan order, their waves, and each subtask's wave. */
export interface OrderedPlan {
  subtasks: Array<SubtaskPlan & { dependsOn: string[] }>;
  /** Subtask ids by wave, each wave in plan order. */
  waves: string[][];
  waveOf: Map<string, number>;
}

/**
 * Validates a plan and orders it into waves. A subtask's wave is one more than the highest wave of its
 * dependencies, so every wave can run in parallel once the waves before it are done.
 * Throws PlanError for an empty plan, a duplicate id, an unknown dependency or a cycle.
 */
export function orderPlan(subtasks: readonly SubtaskPlan[]): OrderedPlan {
  if (subtasks.length === 0) {
    throw new PlanError(
      "the plan has no subtasks; give at least one, or call without subtasks for a template",
    );
  }
  if (subtasks.length > MAX_SUBTASKS) {
    throw new PlanError(
      `the plan has ${subtasks.length} subtasks; the limit is ${MAX_SUBTASKS}. Group the work`,
    );
  }
  const position = new Map<string, number>();
  subtasks.forEach((s, i) => {
    const earlier = position.get(s.id);
    if (earlier !== undefined) {
      throw new PlanError(
        `subtask id "${s.id}" appears twice (subtasks #${earlier + 1} and #${i + 1}); give each subtask its own id`,
        { duplicateId: s.id },
      );
    }
    position.set(s.id, i);
  });
  const normalised = subtasks.map((s) => ({ ...s, dependsOn: [...new Set(s.dependsOn ?? [])] }));
  for (const s of normalised) {
    for (const dep of s.dependsOn) {
      if (!position.has(dep)) {
        throw new PlanError(
          `subtask "${s.id}" depends on "${dep}", which is not in the plan (ids: ${[...position.keys()].join(", ")}); fix the id or add that subtask`,
          { subtaskId: s.id, unknownDependency: dep },
        );
      }
    }
  }
  const cycle = findCycle(normalised);
  if (cycle) {
    throw new PlanError(
      `the dependencies form a cycle: ${cycle.join(" → ")}; remove one of these dependencies so the plan can start`,
      { cycle },
    );
  }
  const byId = new Map(normalised.map((s) => [s.id, s]));
  const waveOf = new Map<string, number>();
  const waveFor = (id: string): number => {
    const known = waveOf.get(id);
    if (known !== undefined) return known;
    const deps = byId.get(id)?.dependsOn ?? [];
    const w = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(waveFor));
    waveOf.set(id, w);
    return w;
  };
  const waves: string[][] = [];
  for (const s of normalised) {
    const w = waveFor(s.id);
    while (waves.length <= w) waves.push([]);
    waves[w]?.push(s.id);
  }
  return { subtasks: normalised, waves, waveOf };
}

/** The first cycle found by depth-first search, as a closed path (`a → b → a`), or undefined. */
function findCycle(subtasks: ReadonlyArray<{ id: string; dependsOn: string[] }>): string[] | undefined {
  const deps = new Map(subtasks.map((s) => [s.id, s.dependsOn]));
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    const st = state.get(id);
    if (st === "done") return undefined;
    if (st === "visiting") return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, "visiting");
    stack.push(id);
    for (const d of deps.get(id) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(id, "done");
    return undefined;
  };
  for (const s of subtasks) {
    const c = visit(s.id);
    if (c) return c;
  }
  return undefined;
}

/** What `shuttle_assess_task` returns without subtasks: a plan for the calling agent to fill in. */
export interface PlanTemplate {
  task: string;
  instructions: string[];
  subtaskShape: Record<string, string>;
  example: SubtaskPlan[];
}

export function planTemplate(task: string): PlanTemplate {
  return {
    task,
    instructions: [
      "Split the task into subtasks that a worker can finish on its own, each producing one output document.",
      "Give each subtask an id (lower-case letters, digits, '-' or '_', at most 64 characters), unique in the plan.",
      "Set capability to the worker capability that should claim it (a name token such as 'typescript' or 'research').",
      "List in dependsOn the ids of subtasks whose output it needs; subtasks without dependencies start at once.",
      "Dependencies must not form a cycle. Subtasks of the same wave run in parallel.",
      "Call shuttle_assess_task again with the same task and the filled-in subtasks, then shuttle_spawn_subagents.",
    ],
    subtaskShape: {
      id: "string, name token, unique",
      title: "string, 1-200 characters",
      description: "string: what the worker must do and what its output must contain",
      capability: "string, name token",
      dependsOn: "optional array of subtask ids",
    },
    example: [
      { id: "research", title: "Survey the options", description: "…", capability: "research" },
      {
        id: "design",
        title: "Write the design",
        description: "…",
        capability: "typescript",
        dependsOn: ["research"],
      },
      {
        id: "tests",
        title: "Write the test plan",
        description: "…",
        capability: "typescript",
        dependsOn: ["research"],
      },
    ],
  };
}
