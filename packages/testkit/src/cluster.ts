import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { freePort, NatsServer } from "./nats-server.js";

/**
 * A 3-node JetStream cluster on loopback, with routes between the nodes, for R3 streams and
 * kill-one-node scenarios. Each node has its own store under one temp directory.
 */
export class NatsCluster {
  readonly nodes: NatsServer[];
  readonly #root: string;

  private constructor(nodes: NatsServer[], root: string) {
    this.nodes = nodes;
    this.#root = root;
  }

  static async start(size = 3): Promise<NatsCluster> {
    const root = mkdtempSync(join(tmpdir(), "loom-cluster-"));
    const clientPorts: number[] = [];
    const routePorts: number[] = [];
    for (let i = 0; i < size; i++) {
      clientPorts.push(await freePort());
      routePorts.push(await freePort());
    }
    const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
    const nodes = await Promise.all(
      clientPorts.map((port, i) =>
        NatsServer.start({
          port,
          storeDir: join(root, `n${i + 1}`),
          args: [
            "--server_name",
            `n${i + 1}`,
            "--cluster_name",
            "loom-test",
            "--cluster",
            `nats://127.0.0.1:${routePorts[i]}`,
            "--routes",
            routes,
          ],
        }),
      ),
    );
    const cluster = new NatsCluster(nodes, root);
    await cluster.waitForJetStream();
    return cluster;
  }

  /** Every node's client URL, comma-separated, for NATS_URL. */
  get url(): string {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(",");
  }

  get servers(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  /**
   * Waits until the JetStream meta leader is elected, the API answers, and a stream replicated on every
   * running node can be placed. An answering API alone is not enough: right after the election the meta
   * group may not know every peer yet, and an R3 stream created then fails with "no suitable peers".
   */
  async waitForJetStream(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const running = this.nodes.filter((n) => n.running);
      try {
        const nc = await connect({ servers: running.map((n) => n.url), timeout: 1_000 });
        try {
          const jsm = await jetstreamManager(nc, { timeout: 5_000 });
          await jsm.getAccountInfo();
          const probe = `cluster_probe_${process.pid}_${Date.now()}`;
          await jsm.streams.add({
            name: probe,
            subjects: [`${probe}.>`],
            num_replicas: running.length,
            storage: StorageType.Memory,
          });
          await jsm.streams.delete(probe);
          return;
        } finally {
          await nc.close();
        }
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`JetStream cluster not ready after ${timeoutMs} ms: ${String(last)}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop({ removeStore: false })));
    rmSync(this.#root, { recursive: true, force: true });
  }
}
