import { ORCHESTRATION_PHASES, type OrchestrationRecord } from "@loominal/protocol";
import { describe, expect, it } from "vitest";
import { InvalidTransitionError } from "./errors.js";
import { assertTransition, canTransition, isTerminalPhase, withPhase } from "./phases.js";

describe("orchestration phases", () => {
  it("allow the forward path and failed/cancelled from every non-final phase", () => {
    const path = ["assessment", "spawning", "execution", "collection", "synthesis", "complete"] as const;
    for (let i = 0; i + 1 < path.length; i++) {
      const from = path[i];
      const to = path[i + 1];
      if (!from || !to) throw new Error("bad path");
      expect(canTransition(from, to)).toBe(true);
      expect(canTransition(from, "failed")).toBe(true);
      expect(canTransition(from, "cancelled")).toBe(true);
    }
  });

  it("refuse skipping a phase, going back, and leaving a final phase", () => {
    expect(canTransition("assessment", "execution")).toBe(false);
    expect(canTransition("collection", "execution")).toBe(false);
    for (const final of ["complete", "failed", "cancelled"] as const) {
      expect(isTerminalPhase(final)).toBe(true);
      for (const p of ORCHESTRATION_PHASES) expect(canTransition(final, p)).toBe(false);
    }
    expect(() => assertTransition("assessment", "synthesis")).toThrow(InvalidTransitionError);
    expect(() => assertTransition("complete", "failed")).toThrow(/complete is final/);
  });

  it("record each transition with its time and note", () => {
    const rec = { phase: "assessment", history: [], updatedAt: "x" } as unknown as OrchestrationRecord;
    const next = withPhase(rec, "spawning", "2025-01-01T00:00:00.000Z", "go");
    expect(next.phase).toBe("spawning");
    expect(next.history).toEqual([
      { from: "assessment", to: "spawning", at: "2025-01-01T00:00:00.000Z", note: "go" },
    ]);
    expect(rec.phase).toBe("assessment");
  });
});
