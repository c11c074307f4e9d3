import { relative } from "node:path";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that take 10 s or more on a quiet machine (they wait on timeouts, replicas and spawned processes more
 * than on the CPU), longest first. Files run grouped by project, so that a worker goes on with files of the
 * project whose modules it has loaded (`isolate: false`); the project holding the longest file goes first,
 * and each project starts with its longest files, so that none of them begins near the end of the run and
 * holds it up alone. Without this, vitest orders projects by name and, on a fresh checkout (no durations
 * remembered), files by size.
 */
const SLOW_FIRST = [
  "packages/warp/src/leases/file-leases.test.ts",
  "test-scenarios/09-weft-ha/weft-ha.scenario.test.ts",
  "apps/runner/src/liveness.test.ts",
  "apps/cli/src/up-services.test.ts",
  "apps/runner/src/cluster.test.ts",
  "apps/runner/src/failover.test.ts",
  "packages/shuttle/src/mcp/execution.test.ts",
  "apps/agent/src/agent.test.ts",
  "apps/cli/src/up.test.ts",
  "test-scenarios/02-work-race/work-race.scenario.test.ts",
  "test-scenarios/01-chat/chat.scenario.test.ts",
  "apps/cli/src/hook.test.ts",
  "test-scenarios/06-shuttle/shuttle.scenario.test.ts",
  "apps/cli/src/mcp-config.test.ts",
  "test-scenarios/11-runner-circuits/circuits.scenario.test.ts",
  "test-scenarios/12-pattern-memory/pattern-memory.scenario.test.ts",
  "packages/warp/src/work/queue.test.ts",
  "apps/runner/src/cancel.test.ts",
  "apps/runner/src/http.test.ts",
  "apps/weft/src/rest.test.ts",
];

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOW_FIRST.indexOf(relative(this.ctx.config.root, f.moduleId));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    const projectRank = new Map<string, number>();
    for (const f of sorted)
      projectRank.set(
        f.project.name,
        Math.min(projectRank.get(f.project.name) ?? SLOW_FIRST.length, rank(f)),
      );
    const projectOrder = [...projectRank].sort((a, b) => a[1] - b[1]).map(([name]) => name);
    return sorted
      .map((file, index) => ({
        file,
        index,
        project: projectOrder.indexOf(file.project.name),
        rank: rank(file),
      }))
      .sort((a, b) => a.project - b.project || a.rank - b.rank || a.index - b.index)
      .map((x) => x.file);
  }
}

export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "test-scenarios"],
    // Tests mostly wait on nats-server and child processes, not the CPU.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    sequence: { sequencer: SlowFirstSequencer },
  },
});
