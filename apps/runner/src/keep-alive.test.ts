import { Agent } from "node:http";
import { pooledRequest, requestsAcrossIdle } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.test-helper.js";

let cluster: Cluster;
beforeAll(async () => {
  cluster = await Cluster.start();
});
afterAll(() => cluster?.stop());

describe("the runner's HTTP server and pooled clients", () => {
  it("keeps a connection left idle past 5 s: the client's next request goes over the same socket", async () => {
    const r = await cluster.replica();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const [first, second] = await requestsAcrossIdle(`${r.url}/healthz`, agent);
      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(second.reusedSocket).toBe(true);
      expect(second.localPort).toBe(first.localPort);
    } finally {
      agent.destroy();
    }
  });

  // Waiting for the idle connection would hold the stop for the 65 s keep-alive timeout, past this
  // test's timeout.
  it("stops on SIGTERM with an idle kept-alive connection open, closing it", {
    timeout: 45_000,
  }, async () => {
    const r = await cluster.replica();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answer = await pooledRequest(`${r.url}/healthz`, agent);
      expect(answer.status).toBe(200);
      const closed = new Promise<void>((resolve) => answer.socket.once("close", () => resolve()));
      expect(await r.term()).toBe(0);
      await closed;
    } finally {
      agent.destroy();
    }
  });
});
