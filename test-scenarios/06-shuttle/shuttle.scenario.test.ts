import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, natsSettingsFromEnv } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import { eventually, spawnStdio, type TestClient, tempDir, uniqueProjectId } from "@loominal/testkit";
import { WorkQueue } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATS_MODES, ScenarioNats } from "../lib/nats.js";
import { AGENT_BIN } from "../lib/weft.js";

const here = dirname(fileURLToPath(import.meta.url));
const SHUTTLE_BIN = join(here, "..", "..", "packages", "shuttle", "dist", "bin.js");
const STEP = join(here, "..", "lib", "shuttle-step.mjs");

const sub = (id: string, capability: string, dependsOn?: string[]) => ({
  id,
  title: `Subtask ${id}`,
  description: `Produce the ${id} section`,
  capability,
  ...(dependsOn ? { dependsOn } : {}),
});

describe.each(NATS_MODES)(
  "06 · a Shuttle orchestration carried out by loominal-agent workers (%s NATS)",
  (mode) => {
    const projectId = uniqueProjectId();
    let nats: ScenarioNats;
    let project: { path: string; cleanup: () => void };
    let parent: TestClient;
    const agents: Array<{ proc: ChildProcess; out: () => string }> = [];

    async function ok(name: string, args: Record<string, unknown>) {
      const r = await parent.call(name, args);
      if (r.isError || !r.structured) throw new Error(`${name} failed: ${r.text}`);
      return r.structured;
    }

    function startAgent(name: string) {
      const proc = spawn(
        process.execPath,
        [
          AGENT_BIN,
          "--capability",
          "research",
          "--capability",
          "writing",
          "--agent-type",
          "claude-code",
          "--command",
          `${JSON.stringify(process.execPath)} ${JSON.stringify(STEP)}`,
        ],
        {
          cwd: project.path,
          env: {
            ...process.env,
            ...nats.env("worker"),
            LOOMINAL_AGENT_NAME: name,
            LOOMINAL_LOG_LEVEL: "info",
            STEP_MS: "800",
          },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let out = "";
      proc.stderr?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      const a = { proc, out: () => out };
      agents.push(a);
      return a;
    }

    beforeAll(async () => {
      project = tempDir("scenario-06-");
      writeFileSync(
        join(project.path, ".loominal.json"),
        JSON.stringify({
          projectId,
          warp: { work: { ackWaitMs: 2_000, maxAttempts: 5, retryBackoffMs: 200 } },
        }),
      );
      nats = await ScenarioNats.start(
        mode,
        [
          { name: "parent", projectId },
          { name: "worker", projectId },
        ],
        { [projectId]: project.path },
      );
      parent = await spawnStdio({
        command: process.execPath,
        args: [SHUTTLE_BIN],
        cwd: project.path,
        env: { ...nats.env("parent"), LOOMINAL_AGENT_NAME: "parent", LOOMINAL_LOG_LEVEL: "warn" },
      });
    });

    afterAll(async () => {
      for (const a of agents) if (a.proc.exitCode === null) a.proc.kill("SIGKILL");
      await parent?.close();
      await nats?.stop();
      project?.cleanup();
    });

    it("runs six subtasks in three waves on three agents, survives one agent killed while holding a subtask, and synthesises", async () => {
      const plan = await ok("shuttle_assess_task", {
        task: "Write the release notes",
        subtasks: [
          sub("api", "research"),
          sub("cli", "research"),
          sub("docs", "writing"),
          sub("summary", "writing", ["api", "cli"]),
          sub("upgrade", "research", ["cli", "docs"]),
          sub("final", "writing", ["summary", "upgrade"]),
        ],
      });
      expect(plan.waves).toEqual([["api", "cli", "docs"], ["summary", "upgrade"], ["final"]]);
      const orchestrationId = String(plan.orchestrationId);
      await ok("shuttle_spawn_subagents", { orchestrationId });
      const workers = ["worker-1", "worker-2", "worker-3"].map(startAgent);

      // Kill one agent while its command is running (it holds a subtask).
      const victim = await eventually(
        () => {
          const holding = workers.find(
            (a) => a.out().includes('"msg":"claimed"') && !a.out().includes('"msg":"completed"'),
          );
          if (!holding) throw new Error("no agent holds a subtask yet");
          return holding;
        },
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      victim.proc.kill("SIGKILL");
      const heldWorkId = /"workId":"([0-9a-f]{32})"[^\n]*"msg":"claimed"/.exec(victim.out())?.[1];
      const victimId = /"agentId":"([0-9a-f]{32})"[^\n]*"msg":"agent registered; claiming work"/.exec(
        victim.out(),
      )?.[1];
      expect(heldWorkId).toBeDefined();

      // The parent calls nothing but get_state until the orchestration reaches collection.
      const collected = await eventually(
        async () => {
          const s = await ok("shuttle_get_state", { orchestrationId });
          const o = s.orchestration as {
            phase: string;
            directory: string;
            subtasks: Array<{ id: string; status: string; outputFile: string }>;
          };
          if (o.phase !== "collection") throw new Error(`phase ${o.phase}`);
          return o;
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
      expect(collected.subtasks.every((s) => s.status === "completed")).toBe(true);
      for (const s of collected.subtasks) {
        const path = `${collected.directory}/${s.outputFile}`;
        expect(existsSync(path)).toBe(true);
        expect(readFileSync(path, "utf8")).toContain(`# Subtask ${s.id}`);
      }
      // The item the killed agent held was completed by another agent, on a later attempt.
      const fabric = await Fabric.connect({ nats: natsSettingsFromEnv(nats.env("parent")) });
      try {
        const q = new WorkQueue({
          fabric,
          projectId,
          agentId: randomId(),
          userId: randomId(),
          settings: warpConfigSchema.parse({}).work,
        });
        const held = await q.get(heldWorkId as string);
        expect(held?.status).toBe("completed");
        expect(held?.attempts).toBeGreaterThanOrEqual(2);
        expect(held?.completedBy).not.toBe(victimId);
      } finally {
        await fabric.close();
      }
      const synth = await ok("shuttle_synthesize_results", { orchestrationId });
      expect(synth.phase).toBe("complete");
      expect(synth.gaps).toEqual([]);
      const doc = String(synth.document);
      const order = ["api", "cli", "docs", "summary", "upgrade", "final"].map((id) =>
        doc.indexOf(`(\`${id}\`)`),
      );
      expect(order.every((pos, i) => pos > 0 && (i === 0 || pos > (order[i - 1] ?? 0)))).toBe(true);
    });
  },
);
