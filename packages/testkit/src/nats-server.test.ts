import { createConnection } from "node:net";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { eventually, sleep, uniqueProjectId } from "./helpers.js";
import { NatsServer, natsServerVersion } from "./nats-server.js";
import { TcpProxy } from "./tcp-proxy.js";

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("NatsServer", () => {
  it("starts on a random loopback port, survives kill -9 and restarts on the same port", async () => {
    const server = await NatsServer.start();
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
      expect(await canConnect(server.port)).toBe(true);
      const port = server.port;
      const pid = server.pid;
      await server.kill();
      expect(server.running).toBe(false);
      expect(await canConnect(port)).toBe(false);
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(pid);
      expect(await canConnect(port)).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it("reports the installed version", () => {
    expect(natsServerVersion()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe("helpers", () => {
  it("eventually retries until the check passes and rethrows the last error on timeout", async () => {
    let n = 0;
    await expect(eventually(() => (++n < 3 ? Promise.reject(new Error("not yet")) : n))).resolves.toBe(3);
    await expect(eventually(() => Promise.reject(new Error("never")), { timeoutMs: 100 })).rejects.toThrow(
      "never",
    );
  });

  it("gives every test its own valid projectId", () => {
    const a = uniqueProjectId();
    expect(a).toMatch(/^t-[0-9a-f]{16}$/);
    expect(uniqueProjectId()).not.toBe(a);
  });
});

describe("NatsServer restart", () => {
  it("keeps only the new process's output, so readiness is read from the new run", async () => {
    const server = await NatsServer.start();
    try {
      const oldPid = server.pid;
      expect(server.log).toContain(`[${oldPid}]`);
      await server.kill();
      await server.restart();
      expect(server.log).toContain(`[${server.pid}]`);
      expect(server.log).not.toContain(`[${oldPid}]`);
    } finally {
      await server.stop();
    }
  });

  it("keeps the store across kill -9: an acknowledged message is readable right after restart", async () => {
    const server = await NatsServer.start();
    try {
      const stream = `kept_${uniqueProjectId().replace(/-/g, "_")}`;
      let nc = await connect({ servers: server.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
      const ack = await jetstream(nc).publish(`${stream}.a`, "survivor");
      await nc.close();
      await server.kill();
      await server.restart();
      // No retry loop: restart() resolves only once the new server is ready.
      nc = await connect({ servers: server.url });
      try {
        const msg = await (await jetstreamManager(nc)).streams.getMessage(stream, { seq: ack.seq });
        expect(msg?.string()).toBe("survivor");
      } finally {
        await nc.close();
      }
    } finally {
      await server.stop();
    }
  });
});

describe("TcpProxy", () => {
  it("forwards, holds traffic back while cut, and delivers it on restore", async () => {
    const server = await NatsServer.start({ jetstream: false });
    const proxy = await TcpProxy.start(server.port);
    const nc = await connect({ servers: proxy.url });
    const direct = await connect({ servers: server.url });
    try {
      const sub = direct.subscribe("proxy.test");
      await direct.flush();
      const got: string[] = [];
      const reading = (async () => {
        for await (const m of sub) {
          got.push(m.string());
          if (got.length === 2) return;
        }
      })();
      nc.publish("proxy.test", "before");
      await nc.flush();
      await eventually(() => expect(got).toEqual(["before"]));
      proxy.cut();
      nc.publish("proxy.test", "during");
      // While cut, a flush (a ping round trip) cannot complete.
      const flushed = nc.flush().then(() => "flushed");
      expect(await Promise.race([flushed, sleep(300).then(() => "held")])).toBe("held");
      expect(got).toEqual(["before"]);
      proxy.restore();
      await flushed;
      await reading;
      expect(got).toEqual(["before", "during"]);
    } finally {
      await nc.close();
      await direct.close();
      await proxy.close();
      await server.stop();
    }
  });
});
