import type { SubtaskPlan } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { PlanError } from "./errors.js";
import { orderPlan, planTemplate } from "./plan.js";

const st = (id: string, dependsOn?: string[]): SubtaskPlan => ({
  id,
  title: `Title ${id}`,
  description: `Do ${id}`,
  capability: "research",
  ...(dependsOn ? { dependsOn } : {}),
});

function planError(fn: () => unknown): PlanError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlanError) return err;
    throw err;
  }
  throw new Error("expected a PlanError");
}

describe("orderPlan", () => {
  it("orders subtasks into waves by dependency depth, keeping plan order within a wave", () => {
    const plan = orderPlan([st("d", ["b", "c"]), st("a"), st("b", ["a"]), st("c", ["a"]), st("e")]);
    expect(plan.waves).toEqual([["a", "e"], ["b", "c"], ["d"]]);
    expect(plan.waveOf.get("d")).toBe(2);
    expect(plan.subtasks.map((s) => s.id)).toEqual(["d", "a", "b", "c", "e"]);
  });

  it("removes repeated dependencies", () => {
    expect(orderPlan([st("a"), st("b", ["a", "a"])]).subtasks[1]?.dependsOn).toEqual(["a"]);
  });

  it("rejects a duplicate id, naming it and both positions", () => {
    const err = planError(() => orderPlan([st("a"), st("b"), st("a")]));
    expect(err.code).toBe("invalid_input");
    expect(err.message).toContain('"a" appears twice (subtasks #1 and #3)');
  });

  it("rejects an unknown dependency, naming the subtask and the missing id", () => {
    const err = planError(() => orderPlan([st("a"), st("b", ["zz"])]));
    expect(err.message).toContain('subtask "b" depends on "zz", which is not in the plan');
  });

  it("rejects a cycle and shows it as a path", () => {
    const err = planError(() => orderPlan([st("a", ["c"]), st("b", ["a"]), st("c", ["b"]), st("x")]));
    expect(err.message).toContain("cycle: a → c → b → a");
    expect(err.details?.cycle).toEqual(["a", "c", "b", "a"]);
  });

  it("rejects a self-dependency as a cycle", () => {
    expect(planError(() => orderPlan([st("a", ["a"])])).message).toContain("a → a");
  });

  it("rejects an empty plan", () => {
    expect(planError(() => orderPlan([])).message).toContain("no subtasks");
  });
});

describe("planTemplate", () => {
  it("returns an example that is itself a valid plan", () => {
    const t = planTemplate("build it");
    expect(t.task).toBe("build it");
    expect(orderPlan(t.example).waves).toEqual([["research"], ["design", "tests"]]);
  });
});
