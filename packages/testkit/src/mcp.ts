import { Client, InMemoryTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport as StdioClientTransportV1 } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport as InMemoryTransportV1 } from "@modelcontextprotocol/sdk/inMemory.js";
import type { McpServer } from "@modelcontextprotocol/server";

/**
 * Which MCP client library a test speaks through: `v2` (`@modelcontextprotocol/client`, what the servers are
 * built on) or `v1` (`@modelcontextprotocol/sdk` 1.x, what most MCP hosts ship). The v1 client checks a
 * result's `structuredContent` against the tool's published output schema and throws when it does not match.
 */
export type McpSdk = "v1" | "v2";

/** The `_meta` key under which a Loominal tool error carries its code, message and details. */
export const TOOL_ERROR_META_KEY = "loominal/error";

/** A tool error as the client received it. */
export interface ToolCallError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** One tool call's result as a test wants to see it. */
export interface ToolCallOutcome {
  isError: boolean;
  structured: Record<string, unknown> | undefined;
  text: string;
  /** For an error result: its code, message and details, read from the result's `_meta`. */
  error: ToolCallError | undefined;
}

export interface ListedTool {
  name: string;
  description?: string;
  inputSchema: unknown;
  outputSchema?: unknown;
}

/** An MCP client connected to one server. */
export interface TestClient {
  readonly sdk: McpSdk;
  listTools(): Promise<ListedTool[]>;
  /** Calls a tool. A client library that rejects the result (a protocol error) makes this throw. */
  call(name: string, args?: Record<string, unknown>): Promise<ToolCallOutcome>;
  close(): Promise<void>;
}

export interface McpClientOptions {
  /** Default "v2". */
  sdk?: McpSdk;
}

interface RawResult {
  content?: unknown;
  structuredContent?: unknown;
  isError?: unknown;
  _meta?: unknown;
}

/** The calls both client generations have in common, typed loosely enough to hold either. */
interface AnyClient {
  listTools(params?: { cursor?: string }): Promise<{
    tools: Array<{ name: string; description?: string; inputSchema: unknown; outputSchema?: unknown }>;
    nextCursor?: string;
  }>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown>;
  close(): Promise<void>;
}

function errorOf(r: RawResult): ToolCallError | undefined {
  if (r.isError !== true) return undefined;
  const meta = r._meta && typeof r._meta === "object" ? (r._meta as Record<string, unknown>) : {};
  const body = meta[TOOL_ERROR_META_KEY];
  if (!body || typeof body !== "object") return undefined;
  const { code, message, details } = body as Record<string, unknown>;
  if (typeof code !== "string" || typeof message !== "string") return undefined;
  return {
    code,
    message,
    ...(details && typeof details === "object" ? { details: details as Record<string, unknown> } : {}),
  };
}

function wrap(sdk: McpSdk, client: AnyClient, onClose: () => Promise<void>): TestClient {
  return {
    sdk,
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
      const r = (await client.callTool({ name, arguments: args })) as RawResult;
      const content = Array.isArray(r.content) ? (r.content as unknown[]) : [];
      const text = content
        .map((c) => (c && typeof c === "object" && "text" in c && typeof c.text === "string" ? c.text : ""))
        .join("\n");
      const structured =
        r.structuredContent && typeof r.structuredContent === "object"
          ? (r.structuredContent as Record<string, unknown>)
          : undefined;
      return { isError: r.isError === true, structured, text, error: errorOf(r) };
    },
    async close() {
      await client.close();
      await onClose();
    },
  };
}

const CLIENT_INFO = { name: "loominal-test", version: "0.0.0" };

/** Connects a client of the chosen SDK generation to an in-process server through linked in-memory transports. */
export async function connectInMemory(
  server: McpServer,
  options: McpClientOptions = {},
): Promise<TestClient> {
  const sdk = options.sdk ?? "v2";
  if (sdk === "v1") {
    const [clientTransport, serverTransport] = InMemoryTransportV1.createLinkedPair();
    // The transport contract (start/send/close and the on* callbacks, JSON-RPC objects) is the same in both.
    await server.connect(serverTransport as unknown as Parameters<McpServer["connect"]>[0]);
    const client = new ClientV1(CLIENT_INFO);
    await client.connect(clientTransport);
    return wrap(sdk, client as unknown as AnyClient, () => server.close());
  }
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client(CLIENT_INFO);
  await client.connect(clientTransport);
  return wrap(sdk, client as unknown as AnyClient, () => server.close());
}

export interface SpawnOptions extends McpClientOptions {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Where the server's stderr goes (default: ignored, so test output stays clean). */
  stderr?: "inherit" | "ignore" | "pipe";
}

/** Spawns a server process over stdio exactly as an MCP client such as Claude Code does. */
export async function spawnStdio(options: SpawnOptions): Promise<TestClient> {
  const sdk = options.sdk ?? "v2";
  const params = {
    command: options.command,
    args: options.args ?? [],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stderr: options.stderr ?? "ignore",
  } as const;
  if (sdk === "v1") {
    const client = new ClientV1(CLIENT_INFO);
    await client.connect(new StdioClientTransportV1(params));
    return wrap(sdk, client as unknown as AnyClient, async () => undefined);
  }
  const client = new Client(CLIENT_INFO);
  await client.connect(new StdioClientTransport(params));
  return wrap(sdk, client as unknown as AnyClient, async () => undefined);
}
