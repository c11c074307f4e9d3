import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeJson, Fabric } from "@loominal/fabric";
import { subjects } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentTarget, api, killSpunUpAgents, WeftProcess } from "../lib/weft.js";

const TOKEN = "scenario-admin-token-0123456789";
const projects: string[] = [];
let nats: NatsServer;
let dir: { path: string; cleanup: () => void };
let config: string;
const instances: WeftProcess[] = [];

async function start(name: string): Promise<WeftProcess> {
  const w = await WeftProcess.start(
    { NATS_URL: nats.url, WEFT_API_TOKENS: TOKEN, WEFT_CONFIG: config, WEFT_INSTANCE_ID: name },
    dir.path,
  );
  instances.push(w);
  return w;
}

async function health(w: WeftProcess): Promise<{ leader: boolean; instance: string }> {
  return (await fetch(`${w.url}/health`)).json() as Promise<{ leader: boolean; instance: string }>;
}

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = tempDir("weft-09-");
  config = join(dir.path, "weft.yaml");
  writeFileSync(config, "defaults:\n  loopIntervalMs: 250\n  idleTimeoutMs: 60000\n");
});

afterAll(async () => {
  const up = instances.find((w) => w.proc.exitCode === null && w.proc.signalCode === null);
  if (up)
    await killSpunUpAgents(
      api(() => up.url, TOKEN),
      projects,
    );
  for (const w of instances) await w.kill();
  await nats?.stop({ removeStore: true });
  dir?.cleanup();
});

async function completed(call: ReturnType<typeof api>, p: string, workId: string) {
  return eventually(
    async () => {
      const w = (await call("GET", `/api/work/${workId}?projectId=${p}`)).body;
      if (w.status !== "completed") throw new Error(`${workId} is ${w.status}`);
      return w;
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  );
}

describe("09 · two Weft instances", () => {
  it("one leads; killing it mid spin-up loses nothing: the other takes over, verifies the spin-up and serves new work", async () => {
    const a = await start("weft-a");
    await eventually(
      async () => {
        if (!(await health(a)).leader) throw new Error("a does not lead yet");
      },
      { timeoutMs: 30_000 },
    );
    const b = await start("weft-b");
    expect((await health(b)).leader).toBe(false);

    const p = uniqueProjectId();
    projects.push(p);
    const callA = api(() => a.url, TOKEN);
    const callB = api(() => b.url, TOKEN);
    await callA("POST", `/api/targets?projectId=${p}`, {
      ...agentTarget("local-ts", "claude-code", ["typescript"], "echo ok"),
      maxConcurrent: 2,
    });

    // The leader starts an agent for the first item; it is killed before the agent can register.
    const first = await callA("POST", `/api/work?projectId=${p}`, {
      description: "first",
      capability: "typescript",
    });
    expect(first.body.spinUp).not.toBeNull();
    await a.kill();

    // The survivor takes over within the lease TTL, verifies the spin-up its predecessor made, and the
    // agent completes the item.
    await eventually(
      async () => {
        if (!(await health(b)).leader) throw new Error("b does not lead yet");
      },
      { timeoutMs: 40_000, intervalMs: 250 },
    );
    await completed(callB, p, first.body.workId);
    const spinUps = (await callB("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps;
    expect(spinUps.find((s: { spinUpId: string }) => s.spinUpId === first.body.spinUp.spinUpId).status).toBe(
      "running",
    );

    // New work through the survivor completes; requests never needed the dead instance.
    const more: string[] = [];
    for (let i = 0; i < 5; i++)
      more.push(
        (
          await callB("POST", `/api/work?projectId=${p}`, {
            description: `more ${i}`,
            capability: "typescript",
          })
        ).body.workId,
      );
    for (const id of more) await completed(callB, p, id);

    // A restarted instance does not lead while b does; kill b and it takes over.
    const a2 = await start("weft-a2");
    expect((await health(a2)).leader).toBe(false);
    await b.kill();
    await eventually(
      async () => {
        if (!(await health(a2)).leader) throw new Error("a2 does not lead yet");
      },
      { timeoutMs: 40_000, intervalMs: 250 },
    );
    const callA2 = api(() => a2.url, TOKEN);
    const last = await callA2("POST", `/api/work?projectId=${p}`, {
      description: "last",
      capability: "typescript",
    });
    await completed(callA2, p, last.body.workId);

    // Nothing lost, nothing doubled: every item completed once, no spin-up failed, none beyond maxConcurrent.
    const all = (await callA2("GET", `/api/work?projectId=${p}&limit=100`)).body.workItems;
    expect(all).toHaveLength(7);
    expect(all.every((w: { status: string }) => w.status === "completed")).toBe(true);
    const finalSpinUps = (await callA2("GET", `/api/spin-ups?projectId=${p}`)).body.spinUps;
    expect(finalSpinUps.filter((s: { status: string }) => s.status === "failed")).toEqual([]);
    expect(finalSpinUps.length).toBeLessThanOrEqual(2);
  });

  it("a single Weft killed with SIGKILL mid-flow and restarted loses nothing", async () => {
    for (const w of instances) await w.kill();
    const solo = await start("weft-solo");
    await eventually(
      async () => {
        if (!(await health(solo)).leader) throw new Error("solo does not lead yet");
      },
      { timeoutMs: 40_000, intervalMs: 250 },
    );
    const p = uniqueProjectId();
    projects.push(p);
    const call = api(() => solo.url, TOKEN);
    await call("POST", `/api/targets?projectId=${p}`, {
      ...agentTarget("local-solo", "claude-code", ["solo"], "echo done"),
      maxConcurrent: 1,
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await call("POST", `/api/work?projectId=${p}`, { description: `solo ${i}`, capability: "solo" }))
          .body.workId,
      );
    // Killed right after accepting the work: spin-up in flight, nothing claimed or completed yet.
    await solo.kill();

    const again = await start("weft-solo");
    const callAgain = api(() => again.url, TOKEN);
    for (const id of ids) await completed(callAgain, p, id);
    const all = (await callAgain("GET", `/api/work?projectId=${p}&limit=100`)).body.workItems;
    expect(all).toHaveLength(3);
    expect(all.every((w: { status: string; attempts: number }) => w.status === "completed")).toBe(true);
  });

  it("answers coord.<p>.<op> requests in the queue group weft: each request once, with two instances up", async () => {
    const live = instances.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    expect(live.length).toBeGreaterThanOrEqual(1);
    const second = await start("weft-c");
    const p = uniqueProjectId();
    projects.push(p);
    const fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
    try {
      for (let i = 0; i < 6; i++) {
        const reply = (
          await fabric.nc.request(
            subjects.coordinator(p, "work-submit"),
            encodeJson({ body: { description: `q ${i}`, capability: "queue-test" } }),
            { timeout: 10_000 },
          )
        ).json() as { ok: boolean; status: number };
        expect(reply).toMatchObject({ ok: true, status: 201 });
      }
    } finally {
      await fabric.close();
    }
    // Two instances subscribe; a queue group means each request made exactly one item.
    const listed = (await api(() => second.url, TOKEN)("GET", `/api/work?projectId=${p}&limit=100`)).body
      .workItems;
    expect(listed).toHaveLength(6);
  });
});
