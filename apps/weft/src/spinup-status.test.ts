// The leader asks each mechanism how a spin-up that has not registered is doing, and fails it as soon as
// what was started ended; health results decide which target starts an agent. Real NATS, fake k8s/GitHub
// API servers and a webhook peer on loopback, real child processes for `local`.
import { createLogger, type Fabric, type Logger } from "@loominal/fabric";
import { type SpinUpRecord, streams, subjects, weftEventSchema } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fakeGithub,
  fakeKubernetesApi,
  GITHUB_TOKEN,
  K8S_NS,
  kubeconfig,
} from "./mechanisms/fake-peers.test-helper.js";
import { GithubActionsMechanism } from "./mechanisms/github-actions.js";
import { jobName, KubernetesMechanism } from "./mechanisms/kubernetes.js";
import { httpPeer, sendJson } from "./mechanisms/mechanisms.test-helper.js";
import { WebhookMechanism } from "./mechanisms/webhook.js";
import type { Weft } from "./weft.js";
import { startInProcessWeft } from "./weft.test-helper.js";

let nats: NatsServer;
let fabric: Fabric;
let weft: Weft;
let stopWeft: (() => Promise<void>) | undefined;
let dir: { path: string; cleanup: () => void };
const logLines: string[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = tempDir("weft-status-");
  const logger: Logger = createLogger({
    name: "weft-status-test",
    level: "debug",
    destination: { write: (line: string) => void logLines.push(line) },
  });
  const secrets = { GH_AGENT_TOKEN: GITHUB_TOKEN };
  // Fast loops; a registration deadline far away, so only what the mechanism says can fail a spin-up.
  const started = await startInProcessWeft({
    natsUrl: nats.url,
    dir: dir.path,
    defaults:
      "{ loopIntervalMs: 100, statusPollIntervalMs: 100, healthCheckIntervalMs: 200, spinUp: { timeoutMs: 600000, cooldownMs: 0 } }",
    logger,
    mechanisms: [
      new KubernetesMechanism({ logger }),
      new GithubActionsMechanism({ logger, secrets }),
      new WebhookMechanism({ logger, secrets }),
    ],
  });
  ({ weft, fabric } = started);
  stopWeft = started.stop;
});

afterAll(async () => {
  for (const c of closers.splice(0)) await c();
  await stopWeft?.();
  await nats?.stop({ removeStore: true });
  dir?.cleanup();
});

async function spinUp(projectId: string, spinUpId: string): Promise<SpinUpRecord> {
  const s = (await weft.listSpinUps(projectId)).find((x) => x.spinUpId === spinUpId);
  if (!s) throw new Error(`no spin-up ${spinUpId}`);
  return s;
}

async function lastSpinUpEvent(projectId: string) {
  const jsm = await fabric.jsm();
  const m = await jsm.streams.getMessage(streams.weftEvents(projectId), {
    last_by_subj: subjects.weftEvent(projectId, "spinup"),
  });
  return weftEventSchema.parse(m?.json());
}

describe("spin-up status from the mechanism", () => {
  it("fails a kubernetes spin-up as soon as its Job failed, with the Job's reason, and keeps the Job", async () => {
    const projectId = uniqueProjectId();
    const api = await fakeKubernetesApi();
    closers.push(api.peer.close);
    await weft.createTarget(projectId, {
      name: "cluster",
      mechanism: "kubernetes",
      agentType: "claude-code",
      capabilities: ["ts"],
      timeoutMs: 600_000,
      config: {
        namespace: K8S_NS,
        kubeconfigPath: kubeconfig(dir.path, api.peer.url),
        image: "ghcr.io/example/loominal-agent:1.2.3",
      },
    });
    const started = await weft.spinUpTarget(projectId, "cluster");
    expect(started.status).toBe("starting");
    const name = jobName(started.spinUpId);
    // While its pod is being created, the spin-up records what the cluster says and keeps waiting.
    await eventually(async () => {
      const s = await spinUp(projectId, started.spinUpId);
      expect(s.status).toBe("starting");
      expect(s.remote).toMatchObject({
        state: "pending",
        message: expect.stringContaining("ContainerCreating"),
      });
    });
    const job = api.jobs.get(name) as { status: Record<string, unknown> };
    job.status = {
      failed: 1,
      conditions: [
        {
          type: "Failed",
          status: "True",
          message: "Job has reached the specified backoff limit (ErrImagePull)",
        },
      ],
    };
    await eventually(async () => {
      const s = await spinUp(projectId, started.spinUpId);
      expect(s.status).toBe("failed");
      expect(s.reason).toMatch(/kubernetes mechanism reports it failed .*backoff limit \(ErrImagePull\)/);
      expect(s.remote?.state).toBe("failed");
      expect(s.finishedAt).toBeDefined();
    });
    // Long before the 600 s registration deadline.
    expect(Date.parse((await spinUp(projectId, started.spinUpId)).deadlineAt)).toBeGreaterThan(
      Date.now() + 500_000,
    );
    // The failed Job stays for `kubectl logs` (its ttlSecondsAfterFinished removes it).
    expect(api.jobs.has(name)).toBe(true);
    await eventually(async () => {
      const e = await lastSpinUpEvent(projectId);
      expect(e).toMatchObject({ type: "failed", data: { spinUpId: started.spinUpId, remote: "failed" } });
    });
    expect(logLines.join("")).not.toContain("k8s-test-token");
  });

  it("fails a github-actions spin-up whose run was cancelled", async () => {
    const projectId = uniqueProjectId();
    const gh = await fakeGithub();
    closers.push(gh.peer.close);
    await weft.createTarget(projectId, {
      name: "actions",
      mechanism: "github-actions",
      agentType: "claude-code",
      capabilities: ["ts"],
      timeoutMs: 600_000,
      config: {
        owner: "acme",
        repo: "agents",
        workflow: "agent.yml",
        tokenEnv: "GH_AGENT_TOKEN",
        apiUrl: gh.peer.url,
        pollMs: 50,
      },
    });
    const started = await weft.spinUpTarget(projectId, "actions");
    await eventually(async () => {
      expect((await spinUp(projectId, started.spinUpId)).remote?.state).toBe("pending");
    });
    const run = gh.runs.find((r) => r.display_title === `loominal ${started.spinUpId}`);
    if (!run) throw new Error("the dispatched run is not listed");
    run.status = "completed";
    run.conclusion = "cancelled";
    await eventually(async () => {
      const s = await spinUp(projectId, started.spinUpId);
      expect(s.status).toBe("failed");
      expect(s.reason).toContain(`run ${run.id} is completed (cancelled)`);
    });
    expect(logLines.join("")).not.toContain(GITHUB_TOKEN);
  });

  it("fails a local spin-up whose process exited before registering", async () => {
    const projectId = uniqueProjectId();
    await weft.createTarget(projectId, {
      name: "dies",
      mechanism: "local",
      agentType: "claude-code",
      capabilities: ["ts"],
      timeoutMs: 600_000,
      config: { command: "/bin/sh", args: ["-c", "echo no agent here; exit 3"] },
    });
    const started = await weft.spinUpTarget(projectId, "dies");
    await eventually(async () => {
      const s = await spinUp(projectId, started.spinUpId);
      expect(s.status).toBe("failed");
      expect(s.reason).toMatch(/local mechanism reports it gone .*exited/);
    });
  });

  it("leaves a spin-up starting while the mechanism cannot tell (API down)", async () => {
    const projectId = uniqueProjectId();
    const api = await fakeKubernetesApi();
    await weft.createTarget(projectId, {
      name: "flaky",
      mechanism: "kubernetes",
      agentType: "claude-code",
      capabilities: ["ts"],
      timeoutMs: 600_000,
      config: {
        namespace: K8S_NS,
        kubeconfigPath: kubeconfig(dir.path, api.peer.url),
        image: "x:1",
        timeoutMs: 500,
      },
    });
    const started = await weft.spinUpTarget(projectId, "flaky");
    await api.peer.close();
    await eventually(async () => {
      const s = await spinUp(projectId, started.spinUpId);
      expect(s.remote?.state).toBe("unknown");
      expect(s.status).toBe("starting");
    });
  });
});

describe("health results choose the target", () => {
  it("starts agents on a healthy target rather than the preferred one whose health check fails", async () => {
    const projectId = uniqueProjectId();
    const hook = await httpPeer((req, res) => {
      const url = new URL(req.url, "http://x");
      if (url.pathname === "/sick/health") return sendJson(res, 503, { ok: false });
      if (url.pathname === "/ok/health") return sendJson(res, 200, { ok: true });
      return sendJson(res, 202, { id: `${url.pathname}-${Date.now()}` });
    });
    closers.push(hook.close);
    const hookTarget = (name: string, agentType: string) =>
      weft.createTarget(projectId, {
        name,
        mechanism: "webhook",
        agentType,
        capabilities: ["review"],
        boundaries: ["default"],
        timeoutMs: 600_000,
        config: { url: `${hook.url}/${name}/start`, healthUrl: `${hook.url}/${name}/health` },
      });
    await hookTarget("sick", "claude-code");
    await hookTarget("ok", "copilot-cli");
    // Both checked by the leader's health loop.
    await eventually(async () => {
      const ts = await weft.listTargets(projectId);
      expect(ts.find((t) => t.name === "sick")?.health.status).toBe("unhealthy");
      expect(ts.find((t) => t.name === "ok")?.health.status).toBe("healthy");
    });
    // claude-code is preferred, but its target failed its health check: the agent starts on the other.
    await weft.submit(projectId, {
      description: "review a change",
      capability: "review",
      preferredAgentType: "claude-code",
    });
    await eventually(async () => {
      const s = await weft.listSpinUps(projectId);
      expect(s.map((x) => x.targetName)).toEqual(["ok"]);
    });
    expect(hook.requests.some((r) => r.url === "/sick/start")).toBe(false);
  });
});
