import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_BIN, agentTarget, api, killSpunUpAgents, WeftProcess } from "../lib/weft.js";

const TOKEN = "scenario-admin-token-0123456789";
const projects: string[] = [];
let nats: NatsServer;
let weft: WeftProcess;
let dir: { path: string; cleanup: () => void };
let call: ReturnType<typeof api>;
const agents: ChildProcess[] = [];

const CONFIG = `
defaults:
  loopIntervalMs: 250
boundaries:
  - name: corporate
    allowedAgentTypes: [copilot-cli]
    preferredAgentType: copilot-cli
  - name: personal
    preferredAgentType: claude-code
  - name: open-source
`;

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = tempDir("weft-10-");
  const config = join(dir.path, "weft.yaml");
  writeFileSync(config, CONFIG);
  weft = await WeftProcess.start(
    { NATS_URL: nats.url, WEFT_API_TOKENS: TOKEN, WEFT_CONFIG: config },
    dir.path,
  );
  call = api(() => weft.url, TOKEN);
});

afterAll(async () => {
  if (call) await killSpunUpAgents(call, projects);
  for (const a of agents) if (a.exitCode === null) a.kill("SIGKILL");
  await weft?.stop();
  await nats?.stop({ removeStore: true });
  dir?.cleanup();
});

async function done(p: string, workId: string) {
  return eventually(
    async () => {
      const w = (await call("GET", `/api/work/${workId}?projectId=${p}`)).body;
      if (w.status !== "completed") throw new Error(`${workId} is ${w.status}`);
      return w;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

describe("10 · routing by boundary and agent type", () => {
  it("corporate work is never claimed by a claude-code agent, even one claiming it directly; Weft starts a copilot-cli agent for it", async () => {
    const p = uniqueProjectId();
    projects.push(p);
    // A claude-code agent started by hand, claiming in corporate and default.
    const hand = spawn(
      process.execPath,
      [
        AGENT_BIN,
        "--capability",
        "typescript",
        "--boundary",
        "corporate",
        "--boundary",
        "default",
        "--agent-type",
        "claude-code",
        "--command",
        "echo claude",
      ],
      {
        cwd: dir.path,
        env: { ...process.env, NATS_URL: nats.url, LOOMINAL_PROJECT_ID: p, LOOMINAL_AGENT_NAME: "hand" },
        stdio: "ignore",
      },
    );
    agents.push(hand);
    const handAgent = await eventually(
      async () => {
        const a = (await call("GET", `/api/agents?projectId=${p}`)).body.agents[0];
        if (!a) throw new Error("not registered yet");
        return a as { agentId: string };
      },
      { timeoutMs: 30_000 },
    );
    await call(
      "POST",
      `/api/targets?projectId=${p}`,
      agentTarget("claude", "claude-code", ["typescript"], "echo claude", { idleTimeoutMs: 60_000 }),
    );
    await call(
      "POST",
      `/api/targets?projectId=${p}`,
      agentTarget("copilot", "copilot-cli", ["typescript"], "echo copilot", { idleTimeoutMs: 60_000 }),
    );

    const corp = await call("POST", `/api/work?projectId=${p}`, {
      description: "internal",
      capability: "typescript",
      boundary: "corporate",
    });
    expect(corp.status).toBe(201);
    // The claude-code agent online does not count: a copilot-cli target is started.
    const copilotTarget = (await call("GET", `/api/targets/copilot?projectId=${p}`)).body;
    expect(corp.body.spinUp).toMatchObject({ targetId: copilotTarget.targetId });
    const w = await done(p, corp.body.workId);
    expect(w.completedBy).not.toBe(handAgent.agentId);
    expect((await call("GET", `/api/agents/${w.completedBy}?projectId=${p}`)).body.agentType).toBe(
      "copilot-cli",
    );
    expect(w.result.output).toContain("copilot");
    expect(w.attempts).toBe(1);

    // A required agent type on default-boundary work: the claude-code agent online hands it back.
    const req = await call("POST", `/api/work?projectId=${p}`, {
      description: "needs copilot",
      capability: "typescript",
      requiredAgentType: "copilot-cli",
    });
    const r = await done(p, req.body.workId);
    expect((await call("GET", `/api/agents/${r.completedBy}?projectId=${p}`)).body.agentType).toBe(
      "copilot-cli",
    );

    // Work anyone may take: the claude-code agent already online gets it, and nothing is started for it.
    const open = await call("POST", `/api/work?projectId=${p}`, {
      description: "anything",
      capability: "typescript",
    });
    expect(open.body.spinUp).toBeNull();
    await done(p, open.body.workId);

    // The hand-run claude-code agent never claimed corporate work.
    const claimedByHand = (
      await call("GET", `/api/work?projectId=${p}&agent=${handAgent.agentId}&boundary=corporate`)
    ).body.workItems;
    expect(claimedByHand).toEqual([]);
    const asRejected = (await call("GET", `/api/work/${corp.body.workId}?projectId=${p}`)).body;
    expect(asRejected.claim.agentId).not.toBe(handAgent.agentId);
  });

  it("work waiting for a required agent type starts that type once a target for it exists, though other agents are online", async () => {
    const p = uniqueProjectId();
    projects.push(p);
    const hand = spawn(
      process.execPath,
      [AGENT_BIN, "--capability", "go", "--agent-type", "claude-code", "--command", "echo claude"],
      {
        cwd: dir.path,
        env: { ...process.env, NATS_URL: nats.url, LOOMINAL_PROJECT_ID: p, LOOMINAL_AGENT_NAME: "hand2" },
        stdio: "ignore",
      },
    );
    agents.push(hand);
    await eventually(
      async () => {
        if ((await call("GET", `/api/agents?projectId=${p}`)).body.agents.length === 0)
          throw new Error("not registered yet");
      },
      { timeoutMs: 30_000 },
    );
    // No target yet: nothing can be started when it is submitted.
    const sub = await call("POST", `/api/work?projectId=${p}`, {
      description: "needs copilot",
      capability: "go",
      requiredAgentType: "copilot-cli",
    });
    expect(sub.body.spinUp).toBeNull();
    await call(
      "POST",
      `/api/targets?projectId=${p}`,
      agentTarget("copilot", "copilot-cli", ["go"], "echo copilot", { idleTimeoutMs: 60_000 }),
    );
    // The leader's loop sees the item waiting for copilot-cli and starts one.
    const w = await done(p, sub.body.workId);
    expect(w.result.output).toContain("copilot");
    const spinUps = (await call("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps;
    expect(spinUps).toHaveLength(1);
  });

  it("personal work prefers a claude-code target when the boundary says so", async () => {
    const p = uniqueProjectId();
    projects.push(p);
    await call(
      "POST",
      `/api/targets?projectId=${p}`,
      agentTarget("copilot", "copilot-cli", ["docs"], "echo copilot", { idleTimeoutMs: 60_000 }),
    );
    await call(
      "POST",
      `/api/targets?projectId=${p}`,
      agentTarget("claude", "claude-code", ["docs"], "echo claude", { idleTimeoutMs: 60_000 }),
    );
    const claude = (await call("GET", `/api/targets/claude?projectId=${p}`)).body;
    const sub = await call("POST", `/api/work?projectId=${p}`, {
      description: "notes",
      capability: "docs",
      boundary: "personal",
    });
    expect(sub.body.spinUp).toMatchObject({ targetId: claude.targetId });
    const w = await done(p, sub.body.workId);
    expect(w.result.output).toContain("claude");
  });
});
