import { createConnection } from "node:net";
import { describe, expect, it } from "vitest";
import { eventually, uniqueProjectId } from "./helpers.js";
import { NatsServer, natsServerVersion } from "./nats-server.js";

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
