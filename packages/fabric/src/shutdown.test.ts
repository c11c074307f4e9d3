import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let server: NatsServer;
beforeAll(async () => {
  server = await NatsServer.start({ jetstream: false });
});
afterAll(() => server?.stop());

/** Starts the fixture service, sends `signal` once it is ready, and returns its output and exit code. */
function runService(mode: string, signal: NodeJS.Signals): Promise<{ code: number | null; lines: string[] }> {
  const fixture = fileURLToPath(new URL("../fixtures/shutdown-service.mjs", import.meta.url));
  const child = spawn(process.execPath, [fixture, server.url, mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString();
    if (out.includes("ready\n") && !child.killed) child.kill(signal);
  });
  return new Promise((resolve) => {
    child.on("exit", (code) => resolve({ code, lines: out.trim().split("\n") }));
  });
}

describe("GracefulShutdown", () => {
  it("on SIGTERM runs the closers last-registered first while NATS is up, then drains it and exits 0", async () => {
    const { code, lines } = await runService("ok", "SIGTERM");
    expect(lines).toEqual(["ready", "closed second", "closed first; nats connected: true", "nats closed"]);
    expect(code).toBe(0);
  });

  it("on SIGINT too; a failing closer does not stop the others but makes the exit code 1", async () => {
    const { code, lines } = await runService("fail", "SIGINT");
    expect(lines).toEqual(["ready", "closed first; nats connected: true", "nats closed"]);
    expect(code).toBe(1);
  });

  it("gives up on a closer that hangs past the timeout and exits 1", async () => {
    const { code, lines } = await runService("hang", "SIGTERM");
    expect(lines).toEqual(["ready"]);
    expect(code).toBe(1);
  });
});
