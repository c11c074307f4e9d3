import { fileURLToPath } from "node:url";
import { silentLogger } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { connectInMemory, spawnStdio, type TestClient } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createToolServer, defineTool } from "./tool.js";

const add = defineTool({
  name: "add",
  description: "Adds two integers",
  input: z.object({ a: z.int(), b: z.int().min(0).describe("non-negative") }),
  output: z.object({ sum: z.int() }),
  annotations: { readOnlyHint: true },
  handler: async ({ a, b }) => ({ data: { sum: a + b }, text: `${a} + ${b} = ${a + b}` }),
});

const failing = defineTool({
  name: "failing",
  description: "Throws whatever it is asked to",
  input: z.object({ kind: z.enum(["loominal", "plain", "bad-output"]) }),
  output: z.object({ ok: z.boolean() }),
  handler: async ({ kind }) => {
    if (kind === "loominal")
      throw new LoominalError("not_found", "no such thing; list them first", { details: { id: "x" } });
    if (kind === "plain") throw new Error("boom");
    return { data: { ok: "yes" } as unknown as { ok: boolean }, text: "" };
  },
});

describe.each(["v2", "v1"] as const)("defineTool through an in-memory %s MCP client", (sdk) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connectInMemory(
      createToolServer({ name: "t", version: "1.0.0", logger: silentLogger() }, [add, failing]),
      { sdk },
    );
  });
  afterAll(async () => {
    await client.close();
  });

  it("publishes input and output JSON schemas", async () => {
    const tools = await client.listTools();
    const listed = tools.find((t) => t.name === "add");
    expect(listed?.inputSchema).toMatchObject({
      type: "object",
      properties: { a: { type: "integer" } },
      required: ["a", "b"],
    });
    expect(listed?.outputSchema).toMatchObject({ type: "object", properties: { sum: { type: "integer" } } });
  });

  it("returns structuredContent and a short text", async () => {
    const r = await client.call("add", { a: 2, b: 3 });
    expect(r).toEqual({ isError: false, structured: { sum: 5 }, text: "2 + 3 = 5", error: undefined });
  });

  it("answers bad input with invalid_input naming each field", async () => {
    const r = await client.call("add", { a: "two", b: -1 });
    expect(r.isError).toBe(true);
    expect(r.error?.code).toBe("invalid_input");
    expect(r.error?.message).toMatch(/a: /);
    expect(r.error?.message).toMatch(/b: /);
    expect(r.text).toMatch(/^invalid_input: /);
  });

  it("maps a Loominal error to its code, message and details", async () => {
    const r = await client.call("failing", { kind: "loominal" });
    // No structuredContent on an error: it would break the tool's output schema, and v1 clients reject that.
    expect(r).toEqual({
      isError: true,
      structured: undefined,
      text: 'not_found: no such thing; list them first\ndetails: {"id":"x"}',
      error: { code: "not_found", message: "no such thing; list them first", details: { id: "x" } },
    });
  });

  it("reports any other error as internal without a stack", async () => {
    const r = await client.call("failing", { kind: "plain" });
    expect(r.error?.code).toBe("internal");
    expect(r.text).toContain("boom");
    expect(r.text).not.toMatch(/at .*\.ts:\d+/);
  });

  it("refuses a result that breaks the output schema", async () => {
    const r = await client.call("failing", { kind: "bad-output" });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/output schema/);
  });
});

describe.each(["v2", "v1"] as const)("a server spawned over stdio, with a %s client", (sdk) => {
  it("lists tools, answers calls and maps errors", async () => {
    const client = await spawnStdio({
      command: process.execPath,
      args: [fileURLToPath(new URL("../fixtures/echo-server.mjs", import.meta.url))],
      sdk,
    });
    try {
      expect((await client.listTools()).map((t) => t.name).sort()).toEqual(["echo", "refuse"]);
      const r = await client.call("echo", { message: "hi" });
      expect(r.structured?.message).toBe("hi");
      expect(r.structured?.pid).not.toBe(process.pid);
      const denied = await client.call("refuse", {});
      expect(denied.error).toEqual({ code: "forbidden", message: "not allowed; ask the owner" });
      expect(denied.text).toBe("forbidden: not allowed; ask the owner");
    } finally {
      await client.close();
    }
  });
});
