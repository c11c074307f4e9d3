import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric, type LoominalConfig, loadConfig } from "@loominal/fabric";
import { connectInMemory, type TestClient, type ToolCallOutcome, tempDir } from "@loominal/testkit";
import { expect } from "vitest";
import { createPatternServer } from "./mcp/server.js";
import { MemoryStore } from "./store.js";

export interface TestAgent {
  config: LoominalConfig;
  fabric: Fabric;
  store: MemoryStore;
  client: TestClient;
  dir: string;
  /** Calls a tool and fails the test if it returned an error; gives the structured result. */
  ok(name: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Calls a tool and fails the test unless it returned an error; gives the error body. */
  fails(name: string, args?: Record<string, unknown>): Promise<{ code: string; message: string }>;
  close(): Promise<void>;
}

export interface AgentOptions {
  projectId: string;
  agentName?: string;
  userId?: string;
  /** Project directory to share with another agent; default: a fresh one. */
  dir?: string;
  pattern?: { ephemeralTtlMs?: number; maxCoreMemories?: number };
  /** The MCP client library generation (default v2). */
  sdk?: "v1" | "v2";
}

/** One agent with its own NATS connection, memory store and in-memory MCP client, configured like the bin. */
export async function openAgent(natsUrl: string, options: AgentOptions): Promise<TestAgent> {
  const own = options.dir === undefined ? tempDir("pattern-test-") : undefined;
  const dir = options.dir ?? (own as { path: string }).path;
  if (options.pattern) {
    writeFileSync(
      join(dir, ".loominal.json"),
      JSON.stringify({ projectId: options.projectId, pattern: options.pattern }),
    );
  }
  const config = loadConfig({
    env: {
      NATS_URL: natsUrl,
      LOOMINAL_PROJECT_DIR: dir,
      LOOMINAL_PROJECT_ID: options.projectId,
      LOOMINAL_AGENT_NAME: options.agentName ?? "default",
      ...(options.userId ? { LOOMINAL_USER_ID: options.userId } : {}),
    },
  });
  const fabric = await Fabric.connect({ nats: config.nats });
  const store = MemoryStore.fromConfig(fabric, config);
  const client = await connectInMemory(createPatternServer({ store, projectDir: config.projectDir }), {
    sdk: options.sdk ?? "v2",
  });
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<ToolCallOutcome> =>
    client.call(name, args);
  return {
    config,
    fabric,
    store,
    client,
    dir,
    async ok(name, args) {
      const r = await call(name, args);
      if (r.isError) throw new Error(`${name} failed: ${r.text}`);
      expect(r.structured).toBeDefined();
      return r.structured as Record<string, unknown>;
    },
    async fails(name, args) {
      const r = await call(name, args);
      if (!r.isError) throw new Error(`${name} succeeded but should have failed: ${r.text}`);
      if (r.structured) throw new Error(`${name} error carries structuredContent: ${r.text}`);
      if (!r.error) throw new Error(`${name} error without its code in _meta: ${r.text}`);
      return r.error;
    },
    async close() {
      await client.close();
      await store.close();
      await fabric.close();
      own?.cleanup();
    },
  };
}

/** A memory as tools return it (only the fields tests look at). */
export interface MemoryOut {
  id: string;
  scope: string;
  category: string;
  content: string;
  tags: string[];
  priority: number;
  author: { projectId: string; agentId: string; userId: string };
  expiresAt?: string;
  origin?: { kind: string; memoryId: string };
}

export function memoryOf(result: Record<string, unknown>): MemoryOut {
  return result.memory as MemoryOut;
}

export function idsOf(memories: unknown): string[] {
  return (memories as MemoryOut[]).map((m) => m.id);
}

export const USER_A = "a".repeat(32);
export const USER_B = "b".repeat(32);

/** One field of a tool result's structured content (the result must have one). */
export function field<T>(outcome: ToolCallOutcome, name: string): T {
  expect(outcome.structured).toBeDefined();
  return (outcome.structured as Record<string, unknown>)[name] as T;
}
