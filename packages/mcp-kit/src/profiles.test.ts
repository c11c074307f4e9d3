import { silentLogger } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { connectInMemory, type TestClient } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { firstSentence, type ToolProfile, toolProfileFromEnv, toolsForSurface } from "./profiles.js";
import { createToolServer, defineTool, inputJsonSchema, outputJsonSchema } from "./tool.js";

const add = defineTool({
  name: "t_add",
  description: "Adds two integers. Both must be whole numbers.",
  input: z.strictObject({ a: z.int(), b: z.int().min(0).describe("non-negative") }),
  output: z.object({ sum: z.int() }),
  handler: async ({ a, b }) => ({ data: { sum: a + b }, text: `${a} + ${b} = ${a + b}` }),
});
const find = defineTool({
  name: "t_find",
  description: "Finds a thing by id",
  input: z.strictObject({ id: z.string().min(1), verbose: z.boolean().optional() }),
  output: z.object({ id: z.string(), nested: z.object({ deep: z.object({ x: z.int() }) }) }),
  handler: async ({ id }) => {
    if (id !== "known") throw new LoominalError("not_found", `no thing ${id}; list them first`);
    return { data: { id, nested: { deep: { x: 1 } } }, text: `found ${id}` };
  },
});
const ping = defineTool({
  name: "t_ping",
  description: "Answers pong",
  input: z.strictObject({}),
  output: z.object({ pong: z.boolean() }),
  handler: async () => ({ data: { pong: true }, text: "pong" }),
});
const TOOLS = [add, find, ping];
const surface = (profile: ToolProfile) => ({ profile, core: ["t_ping"], gateway: "t_more", server: "Test" });

describe("LOOMINAL_TOOLS", () => {
  it("is core by default and accepts core or full", () => {
    expect(toolProfileFromEnv({})).toBe("core");
    expect(toolProfileFromEnv({ LOOMINAL_TOOLS: " " })).toBe("core");
    expect(toolProfileFromEnv({ LOOMINAL_TOOLS: "full" })).toBe("full");
    expect(toolProfileFromEnv({ LOOMINAL_TOOLS: "core" })).toBe("core");
  });

  it("refuses any other value, naming the variable and the allowed values", () => {
    let thrown: unknown;
    try {
      toolProfileFromEnv({ LOOMINAL_TOOLS: "all" });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LoominalError);
    expect((thrown as LoominalError).code).toBe("invalid_config");
    const message = (thrown as Error).message;
    expect(message).toMatch(/^LOOMINAL_TOOLS is "all"/);
    expect(message).toContain('"core"');
    expect(message).toContain('"full"');
  });
});

describe("toolsForSurface", () => {
  it("full: every tool, in order; core: the core tools, then the gateway", () => {
    expect(toolsForSurface(TOOLS, surface("full")).map((t) => t.name)).toEqual(["t_add", "t_find", "t_ping"]);
    expect(toolsForSurface(TOOLS, surface("core")).map((t) => t.name)).toEqual(["t_ping", "t_more"]);
  });

  it("refuses a core name that is not a tool", () => {
    expect(() => toolsForSurface(TOOLS, { ...surface("core"), core: ["t_nope"] })).toThrow(/t_nope/);
  });

  it("a one-line description is the first sentence", () => {
    expect(firstSentence("Adds two integers. Both must be whole numbers.")).toBe("Adds two integers.");
    expect(firstSentence("Finds v1.2 things")).toBe("Finds v1.2 things");
    expect(firstSentence("x".repeat(300))).toHaveLength(160);
  });
});

describe("published schemas", () => {
  it("the output schema keeps top-level fields and their types, not nested shapes", () => {
    const schema = outputJsonSchema(find.output);
    expect(schema).toEqual({
      type: "object",
      properties: { id: { type: "string" }, nested: { type: "object" } },
      required: ["id", "nested"],
    });
  });

  it("the input schema drops what tells a reader nothing, and keeps every rule", () => {
    const schema = inputJsonSchema(
      z.strictObject({
        at: z.iso.datetime({ offset: true }).describe("when"),
        data: z.record(z.string(), z.unknown()).optional(),
        name: z.string().regex(/^[a-z]+$/),
      }),
    );
    expect(schema).toEqual({
      type: "object",
      properties: {
        at: { type: "string", format: "date-time", description: "when" },
        data: { type: "object" },
        name: { type: "string", pattern: "^[a-z]+$" },
      },
      required: ["at", "name"],
      additionalProperties: false,
    });
  });
});

describe.each(["v2", "v1"] as const)("a core profile through a %s client", (sdk) => {
  let client: TestClient;
  let full: TestClient;
  beforeAll(async () => {
    const info = { name: "t", version: "1.0.0", instructions: "Test tools.", logger: silentLogger() };
    client = await connectInMemory(createToolServer(info, TOOLS, surface("core")), { sdk });
    full = await connectInMemory(createToolServer(info, TOOLS, surface("full")), { sdk });
  });
  afterAll(async () => {
    await client.close();
    await full.close();
  });

  it("lists the core tools and the gateway, whose schema names the other tools", async () => {
    const tools = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(["t_ping", "t_more"]);
    const gateway = tools.find((t) => t.name === "t_more");
    expect(gateway?.inputSchema).toMatchObject({
      type: "object",
      properties: { tool: { enum: ["t_add", "t_find"] } },
    });
    expect((await full.listTools()).map((t) => t.name)).toEqual(["t_add", "t_find", "t_ping"]);
  });

  it("the gateway lists the other tools with their parameters and first sentence", async () => {
    const r = await client.call("t_more", {});
    expect(r.isError).toBe(false);
    expect(r.structured).toEqual({
      tools: [
        { name: "t_add", parameters: "a, b", description: "Adds two integers." },
        { name: "t_find", parameters: "id, verbose?", description: "Finds a thing by id" },
      ],
    });
    expect(r.text).toContain("t_find {id, verbose?}: Finds a thing by id");
  });

  it("the gateway describes one tool: its whole description and input schema", async () => {
    const r = await client.call("t_more", { tool: "t_add", describe: true });
    expect(r.structured).toMatchObject({
      name: "t_add",
      description: "Adds two integers. Both must be whole numbers.",
      inputSchema: {
        type: "object",
        required: ["a", "b"],
        properties: { b: { description: "non-negative" } },
      },
    });
  });

  it("a call through the gateway answers exactly as the tool called directly", async () => {
    const through = await client.call("t_more", { tool: "t_add", arguments: { a: 2, b: 3 } });
    const direct = await full.call("t_add", { a: 2, b: 3 });
    expect(through).toEqual(direct);
    expect(through.structured).toEqual({ sum: 5 });
    const found = await client.call("t_more", { tool: "t_find", arguments: { id: "known" } });
    expect(found.structured).toEqual({ id: "known", nested: { deep: { x: 1 } } });
  });

  it("errors through the gateway are the tool's own: same code, same message", async () => {
    const missing = await client.call("t_more", { tool: "t_find", arguments: { id: "other" } });
    expect(missing).toEqual(await full.call("t_find", { id: "other" }));
    expect(missing.error).toEqual({ code: "not_found", message: "no thing other; list them first" });
    expect(missing.structured).toBeUndefined();

    const invalid = await client.call("t_more", { tool: "t_add", arguments: { a: "two", b: -1 } });
    expect(invalid).toEqual(await full.call("t_add", { a: "two", b: -1 }));
    expect(invalid.error?.code).toBe("invalid_input");
    expect(invalid.error?.message).toMatch(/invalid arguments for t_add: a: .*; b: /);

    const noArgs = await client.call("t_more", { tool: "t_add" });
    expect(noArgs.error?.code).toBe("invalid_input");
  });

  it("bad gateway arguments are invalid_input naming the field", async () => {
    const unknown = await client.call("t_more", { tool: "t_nope" });
    expect(unknown.error?.code).toBe("invalid_input");
    expect(unknown.error?.message).toMatch(/tool: .*t_add.*t_find/);
    const core = await client.call("t_more", { tool: "t_ping", arguments: {} });
    expect(core.error?.code).toBe("invalid_input");
    const extra = await client.call("t_more", { tool: "t_add", args: {} });
    expect(extra.error?.message).toMatch(/args/);
  });
});
