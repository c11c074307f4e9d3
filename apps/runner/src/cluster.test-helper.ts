import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bucketKeys, Fabric } from "@loominal/fabric";
import { NatsServer, tempDir } from "@loominal/testkit";
import { openStores, type RunnerStores } from "./cluster/stores.js";
import { loadRunnerConfig } from "./env.js";
import { Replica } from "./replica.test-helper.js";

/** An agent that calls a tool every step until cancelled (or 1,000 steps), ~`latencyMs` per step. */
export const SLOW_AGENTS = (latencyMs: number) =>
  [
    "- name: slow",
    "  model: generic",
    "  maxIterations: 1000",
    `  providers: [{ provider: mock, mock: { latencyMs: ${latencyMs}, jitterMs: 0 } }]`,
    "- name: medium",
    "  model: generic",
    "  providers: [{ provider: mock, mock: { latencyMs: 200, jitterMs: 0 } }]",
    "- name: flaky",
    "  model: generic",
    "  providers:",
    "    - { provider: mock, mock: { latencyMs: 1, jitterMs: 0, rate500: 1 } }",
    "    - { provider: mock, mock: { latencyMs: 1, jitterMs: 0 } }",
    "- name: storm",
    "  model: generic",
    "  providers: [{ provider: mock, mock: { latencyMs: 1, jitterMs: 1, rate429: 0.3 } }]",
  ].join("\n");

/** Settings that make liveness fast for tests (the defaults are for production). */
export const FAST = {
  RUNNER_HEARTBEAT_INTERVAL_MS: "200",
  RUNNER_REPLICA_TTL_MS: "1500",
  RUNNER_REAPER_INTERVAL_MS: "200",
  RUNNER_ADMIT_ACK_WAIT_MS: "3000",
  RUNNER_RETRY_BASE_MS: "1",
  RUNNER_MOCK_LATENCY_MS: "5",
  RUNNER_MOCK_JITTER_MS: "5",
  RUNNER_LOCK_TTL_MS: "3000",
};

/** A nats-server, an agents file, replicas started on demand, and a NATS view of the runner's state. */
export class Cluster {
  readonly server: NatsServer;
  readonly replicas: Replica[] = [];
  readonly env: Record<string, string>;
  fabric!: Fabric;
  stores!: RunnerStores;
  #dir: { path: string; cleanup: () => void };

  private constructor(
    server: NatsServer,
    env: Record<string, string>,
    dir: { path: string; cleanup: () => void },
  ) {
    this.server = server;
    this.env = env;
    this.#dir = dir;
  }

  static async start(env: Record<string, string> = {}, slowMs = 100): Promise<Cluster> {
    const server = await NatsServer.start();
    const dir = tempDir("runner-test-");
    const agents = join(dir.path, "agents.yaml");
    writeFileSync(agents, SLOW_AGENTS(slowMs));
    const c = new Cluster(server, { ...FAST, NATS_URL: server.url, RUNNER_AGENTS: agents, ...env }, dir);
    return c;
  }

  #started = 0;

  async replica(env: Record<string, string> = {}): Promise<Replica> {
    this.#started++;
    const r = await Replica.start({ ...this.env, RUNNER_REPLICA_ID: `r${this.#started}`, ...env });
    this.replicas.push(r);
    if (!this.fabric) {
      this.fabric = await Fabric.connect({ nats: { servers: [this.server.url] } });
      this.stores = await openStores(this.fabric, loadRunnerConfig(this.env));
    }
    return r;
  }

  /** Run ids held in every user's quota set. */
  async quotaHeld(): Promise<number> {
    let n = 0;
    // Not kv.keys(): its consumer can wait out an idle heartbeat (~30 s) when a set is purged meanwhile.
    for (const k of await bucketKeys(this.stores.quotas, "u.>")) {
      const e = await this.stores.quotas.get(k);
      if (e?.operation === "PUT") n += Object.keys((e.json() as { runs: object }).runs).length;
    }
    return n;
  }

  /** The run ids held in every user's quota set, sorted. */
  async quotaRuns(): Promise<string[]> {
    const ids: string[] = [];
    // Not kv.keys(): its consumer can wait out an idle heartbeat (~30 s) when a set is purged meanwhile.
    for (const k of await bucketKeys(this.stores.quotas, "u.>")) {
      const e = await this.stores.quotas.get(k);
      if (e?.operation === "PUT") ids.push(...Object.keys((e.json() as { runs: object }).runs));
    }
    return ids.sort();
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.kill()));
    await this.fabric?.close();
    await this.server.stop();
    this.#dir.cleanup();
  }
}

export async function postRun(
  r: Replica,
  body: Record<string, unknown>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await r.fetch("/v1/runs", { json: { stream: false, ...body } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Run requests delivered to a replica and not yet acknowledged: the cluster's global slots in use. */
export async function globalActive(r: Replica): Promise<number> {
  const s = (await (await r.fetch("/v1/_concurrency/stats")).json()) as { global: { active: number } };
  return s.global.active;
}

export async function getRun(r: Replica, runId: string): Promise<Record<string, unknown>> {
  const res = await r.fetch(`/v1/runs/${runId}`);
  return (await res.json()) as Record<string, unknown>;
}
