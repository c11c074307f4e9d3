import { relative } from "node:path";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that take 15 s or more (they wait on timeouts, replicas and spawned processes more than on the CPU),
 * longest first. Each starts first within its project, so that none of them begins near the end of the run
 * and holds it up alone, as happens on a fresh checkout where vitest has no durations to sort by. Projects
 * still run one after another, so a worker goes on with files of the project whose modules it has loaded.
 */
const SLOW_FIRST = [
  "packages/warp/src/leases/file-leases.test.ts",
  "test-scenarios/09-weft-ha/weft-ha.scenario.test.ts",
  "apps/runner/src/failover.test.ts",
  "apps/cli/src/up-services.test.ts",
  "apps/cli/src/mcp-config.test.ts",
  "test-scenarios/02-work-race/work-race.scenario.test.ts",
  "test-scenarios/06-shuttle/shuttle.scenario.test.ts",
  "apps/cli/src/weft-commands.test.ts",
  "test-scenarios/01-chat/chat.scenario.test.ts",
  "apps/agent/src/agent.test.ts",
  "test-scenarios/11-runner-circuits/circuits.scenario.test.ts",
  "test-scenarios/12-pattern-memory/pattern-memory.scenario.test.ts",
  "packages/shuttle/src/mcp/execution.test.ts",
  "apps/cli/src/hook.test.ts",
  "apps/cli/src/up.test.ts",
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
    const projectOrder = new Map<string, number>();
    for (const f of sorted)
      if (!projectOrder.has(f.project.name)) projectOrder.set(f.project.name, projectOrder.size);
    return sorted
      .map((file, index) => ({
        file,
        index,
        project: projectOrder.get(file.project.name) ?? 0,
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
