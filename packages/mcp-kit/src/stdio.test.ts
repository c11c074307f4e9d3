import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { spawnStdio, type TestClient } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ECHO = fileURLToPath(new URL("../fixtures/echo-server.mjs", import.meta.url));
const FAILING = fileURLToPath(new URL("../fixtures/failing-start.mjs", import.meta.url));
const MiB = 1024 * 1024;

describe("runStdio with bad input", () => {
  let client: TestClient;
  beforeAll(async () => {
    client = await spawnStdio({ command: process.execPath, args: [ECHO] });
  });
  afterAll(async () => {
    await client.close();
  });

  it("answers a 10 MiB argument with invalid_input naming the field and its limit, and stays up", async () => {
    const r = await client.call("echo", { message: "x".repeat(10 * MiB) });
    expect(r.error?.code).toBe("invalid_input");
    expect(r.error?.message).toMatch(/message: .*1000000/);
    expect((await client.call("echo", { message: "still here" })).structured?.message).toBe("still here");
  });

  it("answers a message over the transport's limit without reading it whole, and stays up", async () => {
    const r = await client.call("echo", { message: "y".repeat(20 * MiB) });
    expect(r.error?.code).toBe("invalid_input");
    expect(r.error?.message).toMatch(/the argument "message" is too large/);
    expect(r.error?.message).toMatch(/16 MiB/);
    expect(r.error?.details).toMatchObject({ field: "message", limitBytes: 16 * MiB });
    expect((await client.call("echo", { message: "after" })).structured?.message).toBe("after");
  });

  it("answers arguments nested thousands of levels deep with invalid_input", async () => {
    // Written by hand: MCP client libraries cannot even serialize arguments this deep.
    const child = spawn(process.execPath, [ECHO], { stdio: ["pipe", "pipe", "ignore"] });
    try {
      const answers = new Map<number, Record<string, unknown>>();
      let buffered = "";
      child.stdout.on("data", (d) => {
        buffered += String(d);
        for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
          const m = JSON.parse(buffered.slice(0, nl)) as { id?: number };
          buffered = buffered.slice(nl + 1);
          if (typeof m.id === "number") answers.set(m.id, m as Record<string, unknown>);
        }
      });
      const answer = async (id: number) => {
        for (let i = 0; i < 500 && !answers.has(id); i++) await new Promise((r) => setTimeout(r, 20));
        return answers.get(id);
      };
      const send = (line: string) => child.stdin.write(`${line}\n`);
      send(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "t", version: "0" },
          },
        }),
      );
      expect(await answer(1)).toHaveProperty("result");
      send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
      const depth = 4_500;
      const deep = `${'{"a":'.repeat(depth)}"bottom"${"}".repeat(depth)}`;
      send(
        `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":${deep}}}}`,
      );
      const r = (await answer(2)) as { result?: { isError?: boolean; content?: Array<{ text: string }> } };
      expect(r.result?.isError).toBe(true);
      expect(r.result?.content?.[0]?.text).toMatch(/^invalid_input: .*nested more than 64 levels/);
      send(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "echo", arguments: { message: "fine" } },
        }),
      );
      expect(await answer(3)).toMatchObject({ result: { structuredContent: { message: "fine" } } });
    } finally {
      child.kill();
    }
  });
});

describe("how a stdio server process ends", () => {
  it("exits 2 with the reason on stderr when start-up fails", async () => {
    const child = spawn(process.execPath, [FAILING], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("failing-start: invalid_input: LOOMINAL_EXAMPLE is wrong; fix it");
    expect(stderr).toMatch(/"level":60.*could not start/);
  });

  it("exits 0 when the client closes stdin", async () => {
    const child = spawn(process.execPath, [ECHO], { stdio: ["pipe", "pipe", "ignore"] });
    child.stdout.resume();
    child.stdin.end();
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(0);
  });

  it("exits 1 with the error logged when its transport fails (stdout broken)", async () => {
    const child = spawn(process.execPath, [ECHO], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    // Nobody reads the answers any more: the server's next write fails.
    child.stdout.destroy();
    const request = (id: number) =>
      `${JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } },
      })}\n`;
    child.stdin.write(request(1));
    child.stdin.write(request(2));
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/stdio transport failed/);
    expect(stderr).toMatch(/stdout failed/);
  });
});
