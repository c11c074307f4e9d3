import { tempDir } from "@loominal/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { fakeKubernetesApi, kubeconfig, K8S_NS as NS, K8S_TOKEN as TOKEN } from "./fake-peers.test-helper.js";
import { jobName, KubernetesMechanism } from "./kubernetes.js";
import { agentEnv, capturedLogger, targetRecord } from "./mechanisms.test-helper.js";

describe("kubernetes mechanism", () => {
  const closers: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  async function setup(options: { answer?: number } = {}) {
    const api = await fakeKubernetesApi(options);
    const dir = tempDir("weft-k8s-");
    closers.push(api.peer.close, dir.cleanup);
    const { logger, lines } = capturedLogger();
    const m = new KubernetesMechanism({ logger });
    const config = m.validateConfig({
      namespace: NS,
      kubeconfigPath: kubeconfig(dir.path, api.peer.url),
      image: "ghcr.io/example/loominal-agent:1.2.3",
      command: ["loominal-agent"],
      args: ["--", "claude"],
      env: { LOG_LEVEL: "info" },
      secretEnv: { ANTHROPIC_API_KEY: { secretName: "agent-keys", key: "anthropic" } },
      resources: { requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "1Gi" } },
      serviceAccountName: "loominal-agent",
      imagePullSecrets: ["ghcr"],
      ttlSecondsAfterFinished: 600,
    });
    return { ...api, m, lines, target: targetRecord("kubernetes", config) };
  }

  it("creates the Job it documents, reports it from the Job and its pod, and deletes it in the background", async () => {
    const { peer, jobs, pods, m, lines, target } = await setup();
    expect(await m.test(target)).toMatchObject({ ok: true });
    const spinUpId = "0f0e0d0c0b0a09080706050403020100";
    const handle = await m.start({ spinUpId, target, env: agentEnv(spinUpId) });
    const name = jobName(spinUpId);
    expect(handle).toMatchObject({ namespace: NS, jobName: name });
    const created = JSON.parse(peer.requests.find((r) => r.method === "POST")?.body ?? "{}");
    const labels = {
      "app.kubernetes.io/name": "loominal-agent",
      "app.kubernetes.io/managed-by": "loominal-weft",
      "loominal.dev/target-id": target.targetId,
      "loominal.dev/target-name": target.name,
      "loominal.dev/project": "proj1",
      "loominal.dev/spinup-id": spinUpId,
    };
    expect(created).toEqual({
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name, namespace: NS, labels },
      spec: {
        backoffLimit: 0,
        ttlSecondsAfterFinished: 600,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            serviceAccountName: "loominal-agent",
            imagePullSecrets: [{ name: "ghcr" }],
            containers: [
              {
                name: "agent",
                image: "ghcr.io/example/loominal-agent:1.2.3",
                command: ["loominal-agent"],
                args: ["--", "claude"],
                env: [
                  { name: "LOG_LEVEL", value: "info" },
                  ...Object.entries(agentEnv(spinUpId)).map(([k, v]) => ({ name: k, value: v })),
                  {
                    name: "ANTHROPIC_API_KEY",
                    valueFrom: { secretKeyRef: { name: "agent-keys", key: "anthropic" } },
                  },
                ],
                resources: { requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "1Gi" } },
              },
            ],
          },
        },
      },
    });
    expect(jobs.has(name)).toBe(true);
    expect(await m.status(handle)).toEqual({
      state: "pending",
      message: `pod ${name}-abcde is Pending (ContainerCreating)`,
    });
    (pods.get(`${name}-abcde`) as { status: unknown }).status = { phase: "Running" };
    expect(await m.status(handle)).toMatchObject({ state: "running" });
    (jobs.get(name) as { status: unknown }).status = {
      failed: 1,
      conditions: [{ type: "Failed", message: "BackoffLimitExceeded" }],
    };
    expect(await m.status(handle)).toEqual({
      state: "failed",
      message: `Job ${name} failed: BackoffLimitExceeded`,
    });

    await m.stop(handle, { graceMs: 1_000 });
    const del = peer.requests.find((r) => r.method === "DELETE");
    expect(del?.url).toBe(`/apis/batch/v1/namespaces/${NS}/jobs/${name}?propagationPolicy=Background`);
    expect(jobs.has(name)).toBe(false);
    expect(await m.status(handle)).toMatchObject({ state: "gone" });
    await m.stop(handle, { graceMs: 1_000 });
    expect(lines.join("")).not.toContain(TOKEN);
  });

  it("says a Job of that name exists (409)", async () => {
    const { m, target } = await setup();
    await m.start({ spinUpId: "aa01", target, env: agentEnv("aa01") });
    await expect(m.start({ spinUpId: "aa01", target, env: agentEnv("aa01") })).rejects.toMatchObject({
      code: "conflict",
      message: expect.stringMatching(/HTTP 409 \(jobs.batch "loominal-agent-aa01" already exists\)/),
    });
  });

  it("turns 403 into what Role to grant, and 500 into a clear error", async () => {
    const denied = await setup({ answer: 403 });
    await expect(
      denied.m.start({ spinUpId: "bb01", target: denied.target, env: agentEnv("bb01") }),
    ).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(/HTTP 403.*grant it the Role/),
    });
    const health = await denied.m.test(denied.target);
    expect(health.ok).toBe(false);
    expect(health.message).toMatch(/listing Jobs in agents: HTTP 403/);
    const broken = await setup({ answer: 500 });
    await expect(
      broken.m.start({ spinUpId: "bb02", target: broken.target, env: agentEnv("bb02") }),
    ).rejects.toMatchObject({
      code: "internal",
      message: expect.stringMatching(/HTTP 500.*Kubernetes API failed/),
    });
  });

  it("names a kubeconfig that cannot be used and a bad config field", async () => {
    const m = new KubernetesMechanism({ logger: capturedLogger().logger });
    const target = targetRecord(
      "kubernetes",
      m.validateConfig({ namespace: NS, kubeconfigPath: "/nonexistent/kubeconfig", image: "x" }),
    );
    expect((await m.test(target)).message).toMatch(/kubeconfig \/nonexistent\/kubeconfig cannot be used/);
    expect(() => m.validateConfig({ namespace: "Bad_NS", image: "x" })).toThrow(/config\.namespace/);
  });
});
