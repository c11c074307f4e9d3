import { eventually, NatsCluster } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import { ensureStream } from "./streams.js";

describe("a 3-node JetStream cluster", () => {
  let cluster: NatsCluster;
  let fabric: Fabric;
  beforeAll(async () => {
    cluster = await NatsCluster.start();
    fabric = await Fabric.connect({
      nats: { servers: cluster.servers },
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 250,
    });
  }, 60_000);
  afterAll(async () => {
    await fabric?.close();
    await cluster?.stop();
  });

  it("keeps an R3 stream accepting publishes and serving reads after one node is killed", async () => {
    await ensureStream(fabric, { name: "r3", subjects: ["r3.>"], replicas: 3 });
    for (let i = 0; i < 100; i++) await fabric.js.publish("r3.a", String(i));
    const jsm = await fabric.jsm();
    const leader = (await jsm.streams.info("r3")).cluster?.leader;
    // Kill the stream leader: the hardest node to lose.
    const victim = cluster.nodes.find((_, i) => `n${i + 1}` === leader) ?? cluster.nodes[0];
    if (!victim) throw new Error("no node");
    await victim.kill();
    // Publishing resumes once a new leader is elected among the two survivors.
    await eventually(() => fabric.js.publish("r3.a", "after", { timeout: 1_000 }), {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    for (let i = 0; i < 100; i++) await fabric.js.publish("r3.a", `more-${i}`);
    const info = await eventually(
      async () => {
        const s = await (await fabric.jsm()).streams.info("r3");
        expect(s.state.messages).toBe(201);
        return s;
      },
      { timeoutMs: 15_000 },
    );
    expect(info.cluster?.leader).not.toBe(leader);
    const first = await (await fabric.jsm()).streams.getMessage("r3", { seq: 1 });
    expect(first?.string()).toBe("0");
    // The killed node comes back and catches up.
    await victim.restart();
    await cluster.waitForJetStream();
    await eventually(
      async () => {
        const s = await (await fabric.jsm()).streams.info("r3");
        expect(s.cluster?.replicas?.every((r) => r.current)).toBe(true);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  }, 120_000);
});
