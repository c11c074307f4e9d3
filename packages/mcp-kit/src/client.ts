import { Client, InMemoryTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import type { McpServer } from "@modelcontextprotocol/server";

/** One tool call's result as a test (or a CLI) wants to see it. */
export interface ToolCallOutcome {
  isError: boolean;
  structured: Record<string, unknown> | undefined;
  text: string;
}

export interface ListedTool {
  name: string;
  description?: string;
  inputSchema: unknown;
  outputSchema?: unknown;
}

/** An MCP client connected to one server. */
export interface TestClient {
  readonly client: Client;
  listTools(): Promise<ListedTool[]>;
  call(name: string, args?: Record<string, unknown>): Promise<ToolCallOutcome>;
  close(): Promise<void>;
}

function wrap(client: Client, onClose: () => Promise<void>): TestClient {
  return {
    client,
    async listTools() {
      const out: ListedTool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : {});
        for (const t of page.tools) {
          out.push({
            name: t.name,
            ...(t.description ? { description: t.description } : {}),
            inputSchema: t.inputSchema,
            ...(t.outputSchema ? { outputSchema: t.outputSchema } : {}),
          });
        }
        cursor = page.nextCursor;
      } while (cursor);
      return out;
    },
    async call(name, args = {}) {
      const r = await client.callTool({ name, arguments: args });
      const content = Array.isArray(r.content) ? r.content : [];
      const text = content
        .map((c) => (c && typeof c === "object" && "text" in c && typeof c.text === "string" ? c.text : ""))
        .join("\n");
      const structured =
        r.structuredContent && typeof r.structuredContent === "object"
          ? (r.structuredContent as Record<string, unknown>)
          : undefined;
      return { isError: r.isError === true, structured, text };
    },
    async close() {
      await client.close();
      await onClose();
    },
  };
}

/** Connects a client to an in-process server through linked in-memory transports. */
export async function connectInMemory(server: McpServer): Promise<TestClient> {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: "loominal-test", version: "0.0.0" });
  await client.connect(clientTransport);
  return wrap(client, () => server.close());
}

export interface SpawnOptions {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Where the server's stderr goes (default: ignored, so test output stays clean). */
  stderr?: "inherit" | "ignore" | "pipe";
}

/** Spawns a server process over stdio exactly as an MCP client such as Claude Code does. */
export async function spawnStdio(options: SpawnOptions): Promise<TestClient> {
  const transport = new StdioClientTransport({
    command: options.command,
    args: options.args ?? [],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stderr: options.stderr ?? "ignore",
  });
  const client = new Client({ name: "loominal-test", version: "0.0.0" });
  await client.connect(transport);
  return wrap(client, async () => undefined);
}
