import { Writable } from "node:stream";
import { createLogger, Fabric } from "@loominal/fabric";
import { connectInMemory, NatsServer, type TestClient } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createToolServer, defineTool } from "./tool.js";

describe("the error mapper", () => {
  let server: NatsServer;
  let fabric: Fabric;
  let client: TestClient;
  const logged: string[] = [];

  beforeAll(async () => {
    server = await NatsServer.start({ jetstream: false });
    fabric = await Fabric.connect({ nats: { servers: [server.url] } });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged.push(String(chunk));
        done();
      },
    });
    const logger = createLogger({ name: "t", destination: sink, env: {} });
    const tools = [
      defineTool({
        name: "ask_nobody",
        description: "A request nobody answers: the raw nats.js error, not a Loominal one",
        input: z.object({}),
        output: z.object({ ok: z.boolean() }),
        handler: async () => {
          await fabric.nc.request("nobody.listens.here", "", { timeout: 1_000 });
          return { data: { ok: true }, text: "" };
        },
      }),
      defineTool({
        name: "buggy",
        description: "Fails the way a bug does",
        input: z.object({}),
        output: z.object({ ok: z.boolean() }),
        handler: async () => {
          throw new TypeError("cannot read properties of undefined (reading 'x')");
        },
      }),
    ];
    client = await connectInMemory(createToolServer({ name: "t", version: "1.0.0", logger }, tools));
  });
  afterAll(async () => {
    await client?.close();
    await fabric?.close();
    await server?.stop();
  });

  it("maps a raw NATS 'did not answer' error to nats_unavailable with what to do next", async () => {
    const r = await client.call("ask_nobody", {});
    expect(r.isError).toBe(true);
    expect(r.error?.code).toBe("nats_unavailable");
    expect(r.error?.message).toMatch(/retry in a few seconds/);
  });

  it("logs an unexpected error with its stack, and answers internal without it", async () => {
    const r = await client.call("buggy", {});
    expect(r.error?.code).toBe("internal");
    expect(r.text).not.toMatch(/\n\s+at /);
    const line = logged.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.tool === "buggy");
    expect(line?.msg).toBe("tool failed with an unexpected error");
    expect(line?.level).toBe(50);
    const err = line?.err as { type: string; message: string; stack: string };
    expect(err.type).toBe("TypeError");
    expect(err.stack).toMatch(/errors\.test\.ts/);
  });
});
