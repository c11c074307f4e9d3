import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";

const HARNESS = fileURLToPath(new URL("../../bench/circuits/index.mjs", import.meta.url));
const dir = tempDir("circuits-");
afterAll(() => dir.cleanup());

interface Report {
  waves: Array<{
    circuits: number;
    completed: number;
    failed: number;
    silentRegressions: number;
    incomplete: number;
    retried: number;
    losses: Record<string, number>;
  }>;
  injections: {
    killReplica?: { victimRuns: number; notTerminal: number; victimOutcomes: Record<string, number> };
  };
  after: {
    stuckRunning: number;
    stuckQueued: number;
    quotaSlotsHeld: number;
    globalSlotsHeld: number;
    runRecords: number;
    unpostedRuns: number;
    leftRuns?: unknown[];
  };
  runTimes: {
    byAgent: Record<string, { queueMs: Percentiles; runMs: Percentiles }>;
    all: { queueMs: Percentiles; runMs: Percentiles };
  };
  clean: boolean;
}

interface Percentiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Runs the harness as its own process (it starts nats-server and the replicas) and reads its report. */
function harness(args: string[]): Promise<{ code: number | null; report: Report; stderr: string }> {
  const out = join(dir.path, "report.json");
  const proc = spawn(process.execPath, [HARNESS, ...args, "--out", out, "--quiet"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the harness did not finish within 100 s:\n${stderr}`));
    }, 100_000);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, report: JSON.parse(readFileSync(out, "utf8")) as Report, stderr });
      } catch (err) {
        reject(new Error(`no report (${String(err)}); exit ${code}:\n${stderr}`));
      }
    });
  });
}

describe("11 runner circuits", () => {
  it("20 circuits on 2 replicas, one killed with SIGKILL mid-wave: all complete, nothing stuck or held", async () => {
    const { code, report, stderr } = await harness([
      "--scale",
      "20",
      "--replicas",
      "2",
      "--mock-latency",
      "100",
      "--mock-jitter",
      "20",
      "--kill-replica",
      "--inject-after",
      "300ms",
      "--settle",
      "30s",
      "--wave-timeout",
      "60s",
      ...[
        "RUNNER_HEARTBEAT_INTERVAL_MS=200",
        "RUNNER_REPLICA_TTL_MS=1500",
        "RUNNER_REAPER_INTERVAL_MS=200",
        "RUNNER_ADMIT_ACK_WAIT_MS=3000",
        "RUNNER_RETRY_BASE_MS=1",
      ].flatMap((e) => ["--replica-env", e]),
    ]);
    const kill = report.injections.killReplica;
    expect(kill, stderr).toBeDefined();
    // The kill hit runs in flight, and each of them ended.
    expect(kill?.victimRuns).toBeGreaterThan(0);
    expect(kill?.notTerminal).toBe(0);
    expect(Object.keys(kill?.victimOutcomes ?? {})).toEqual(["failed/replica_died"]);
    const [wave] = report.waves;
    expect(wave).toMatchObject({
      circuits: 20,
      completed: 20,
      failed: 0,
      silentRegressions: 0,
      incomplete: 0,
    });
    // Circuits that lost a run to the kill were fired again; each loss names the dead replica.
    expect(wave?.retried).toBeGreaterThan(0);
    for (const reason of Object.keys(wave?.losses ?? {}))
      expect(reason).toMatch(/replica_died|circuit aborted/);
    expect(report.after, JSON.stringify(report.after)).toMatchObject({
      stuckRunning: 0,
      stuckQueued: 0,
      quotaSlotsHeld: 0,
      globalSlotsHeld: 0,
    });
    // A POST cut by the kill is sent again with its idempotency_key: no run is admitted twice, so the
    // runner holds no run the driver does not know of.
    expect(report.after.unpostedRuns).toBe(0);
    expect(report.after.runRecords).toBeGreaterThanOrEqual(60);
    // Where the runs' time went, per agent, from the same run records: every run that started has a queue
    // time, every run that started and ended a run time (the killed replica's runs too).
    const times = report.runTimes;
    expect(Object.keys(times.byAgent)).toEqual(["mock-editor", "mock-evaluator", "mock-researcher"]);
    for (const t of Object.values(times.byAgent)) {
      expect(t.runMs.n).toBeGreaterThan(0);
      expect(t.queueMs.n).toBeGreaterThanOrEqual(t.runMs.n);
      expect(t.queueMs.p50).toBeLessThanOrEqual(t.queueMs.max);
    }
    const runsTimed = Object.values(times.byAgent).reduce((n, t) => n + t.runMs.n, 0);
    expect(times.all.runMs.n).toBe(runsTimed);
    expect(runsTimed).toBeLessThanOrEqual(report.after.runRecords);
    expect(report.clean).toBe(true);
    expect(code).toBe(0);
  });
});
