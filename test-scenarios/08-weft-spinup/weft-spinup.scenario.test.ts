import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_BIN, agentTarget, alive, api, killSpunUpAgents, WeftProcess } from "../lib/weft.js";

const TOKEN = "scenario-admin-token-0123456789";
const projects: string[] = [];
let nats: NatsServer;
let weft: WeftProcess;
let dir: { path: string; cleanup: () => void };
let call: ReturnType<typeof api>;

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = tempDir("weft-08-");
  const config = join(dir.path, "weft.yaml");
  writeFileSync(config, "defaults:\n  loopIntervalMs: 250\n  shutdownGraceMs: 5000\n");
  weft = await WeftProcess.start(
    { NATS_URL: nats.url, WEFT_API_TOKENS: TOKEN, WEFT_CONFIG: config },
    dir.path,
  );
  call = api(() => weft.url, TOKEN);
});

afterAll(async () => {
  if (call) await killSpunUpAgents(call, projects);
  await weft?.stop();
  await nats?.stop({ removeStore: true });
  dir?.cleanup();
});

describe("08 · Weft spin-up", () => {
  it("work with no agent online starts loominal-agent locally, which registers, claims and completes it, and is shut down when idle", async () => {
    const p = uniqueProjectId();
    projects.push(p);
    const target = await call("POST", `/api/targets?projectId=${p}`, {
      ...agentTarget("local-ts", "claude-code", ["typescript"], 'echo "done $LOOMINAL_WORK_TASK_ID"'),
      idleTimeoutMs: 2_000,
      timeoutMs: 60_000,
    });
    expect(target.status).toBe(201);
    expect((await call("GET", `/api/agents?projectId=${p}`)).body.agents).toEqual([]);

    const sub = await call("POST", `/api/work?projectId=${p}`, {
      description: "compile",
      capability: "typescript",
      taskId: "compile",
    });
    expect(sub.status).toBe(201);
    expect(sub.body.spinUp).toMatchObject({ targetId: target.body.targetId });
    const spinUpId = sub.body.spinUp.spinUpId as string;

    // Verified only when the agent registered carrying the spin-up id.
    const running = await eventually(
      async () => {
        const s = (await call("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps.find(
          (x: { spinUpId: string }) => x.spinUpId === spinUpId,
        );
        if (s?.status !== "running") throw new Error(`spin-up is ${s?.status}`);
        return s;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const agent = (await call("GET", `/api/agents/${running.agentId}?projectId=${p}`)).body;
    expect(agent.spinUpId).toBe(spinUpId);
    expect(agent.agentType).toBe("claude-code");

    const done = await eventually(
      async () => {
        const w = (await call("GET", `/api/work/${sub.body.workId}?projectId=${p}`)).body;
        if (w.status !== "completed") throw new Error(`work is ${w.status}`);
        return w;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(done.completedBy).toBe(running.agentId);
    expect(done.result.output).toContain("done compile");

    // Idle: asked to shut down on its control subject; the process is gone and the slot freed.
    const pid = running.handle.pid as number;
    const stopped = await eventually(
      async () => {
        const s = (await call("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps.find(
          (x: { spinUpId: string }) => x.spinUpId === spinUpId,
        );
        if (s?.status !== "stopped") throw new Error(`spin-up is ${s?.status}`);
        return s;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(stopped.shutdownRequestedAt).toBeDefined();
    await eventually(
      () => {
        if (alive(pid)) throw new Error(`agent ${pid} still runs`);
      },
      { timeoutMs: 20_000 },
    );
    const metrics = await fetch(`${weft.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(/weft_spinups_total\{result="succeeded"\} [1-9]/);
    expect(metrics).toMatch(/weft_idle_shutdowns_total [1-9]/);
  });

  it("a launched process that never registers is a failed spin-up, and it is stopped", async () => {
    const p = uniqueProjectId();
    projects.push(p);
    // Runs, but is not an agent: it never registers.
    const t = await call("POST", `/api/targets?projectId=${p}`, {
      name: "sleeper",
      mechanism: "local",
      agentType: "claude-code",
      capabilities: ["typescript"],
      config: { command: "/bin/sleep", args: ["60"] },
      timeoutMs: 1_500,
      cooldownMs: 0,
    });
    const s = await call("POST", `/api/targets/${t.body.targetId}/spin-up?projectId=${p}`, {});
    expect(s.status).toBe(202);
    expect(s.body.status).toBe("starting");
    const failed = await eventually(
      async () => {
        const x = (await call("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps[0];
        if (x?.status !== "failed") throw new Error(`spin-up is ${x?.status}`);
        return x;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(failed.reason).toMatch(/no agent registered/);
    await eventually(
      () => {
        if (alive(failed.handle.pid)) throw new Error("the process still runs");
      },
      { timeoutMs: 20_000 },
    );
  });

  it("ten items for one capability start at most maxConcurrent agents, and all ten complete", async () => {
    const p = uniqueProjectId();
    projects.push(p);
    await call("POST", `/api/targets?projectId=${p}`, {
      ...agentTarget("pool", "claude-code", ["docs"], "echo ok"),
      maxConcurrent: 2,
      idleTimeoutMs: 3_000,
    });
    const ids: string[] = [];
    const spinUps: { spinUpId: string; startedAt: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await call("POST", `/api/work?projectId=${p}`, {
        description: `page ${i}`,
        capability: "docs",
      });
      ids.push(r.body.workId);
      if (r.body.spinUp) spinUps.push(r.body.spinUp);
    }
    // One need, one spin-up: while the first agent is on its way (not yet registered) no submission
    // starts another. Once it is online and busy with nine items queued, one more may start
    // (maxConcurrent 2); how many submissions come before that depends on how fast it registers.
    expect(spinUps.length).toBeGreaterThanOrEqual(1);
    expect(spinUps.length).toBeLessThanOrEqual(2);
    await eventually(
      async () => {
        const list = (await call("GET", `/api/work?projectId=${p}&status=completed&limit=100`)).body
          .workItems;
        if (list.length < 10) throw new Error(`${list.length} of 10 completed`);
      },
      { timeoutMs: 90_000, intervalMs: 300 },
    );
    const all = (await call("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps;
    expect(all.length).toBeGreaterThanOrEqual(1);
    expect(all.length).toBeLessThanOrEqual(2);
    const first = all.find((s: { spinUpId: string }) => s.spinUpId === spinUps[0]?.spinUpId);
    for (const later of all.filter((s: { spinUpId: string }) => s.spinUpId !== first.spinUpId)) {
      expect(first.verifiedAt, "a second agent started before the first registered").toBeDefined();
      expect(Date.parse(later.startedAt)).toBeGreaterThanOrEqual(Date.parse(first.verifiedAt));
    }
    expect(AGENT_BIN).toContain("agent");
  });
});
