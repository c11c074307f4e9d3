import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LoominalError } from "@loominal/protocol";

/** The MCP servers a project adds to Claude Code: bin name and package directory in the workspace. */
export const MCP_SERVERS = [
  { name: "loominal-warp", packageDir: "packages/warp", bin: "loominal-warp", args: [] },
  { name: "loominal-pattern", packageDir: "packages/pattern", bin: "loominal-pattern", args: [] },
  { name: "loominal-shuttle", packageDir: "packages/shuttle", bin: "loominal-shuttle", args: [] },
  // A thin client of a running Weft (`weft serve`) over NATS.
  { name: "loominal-weft", packageDir: "apps/weft", bin: "weft", args: ["mcp"] },
] as const;

export type McpServerName = (typeof MCP_SERVERS)[number]["name"];

/** One entry of `.mcp.json` → `mcpServers`, in the shape Claude Code reads. */
export interface McpServerEntry {
  type: "stdio";
  command: string;
  args: string[];
  env: Record<string, string>;
}

export interface McpConfig {
  mcpServers: Record<McpServerName, McpServerEntry>;
}

export interface McpConfigResult {
  config: McpConfig;
  /** Bins that do not exist yet (the package is not built). */
  missing: string[];
}

/**
 * The `.mcp.json` content for the four MCP servers: the node running this CLI and the absolute path of
 * each built bin, so the config works whatever PATH or directory Claude Code starts them with.
 * `env` must hold no secrets: it is printed and usually committed.
 */
export function buildMcpConfig(env: Record<string, string>): McpConfigResult {
  const root = workspaceRoot();
  const missing: string[] = [];
  const entries: Partial<Record<McpServerName, McpServerEntry>> = {};
  for (const server of MCP_SERVERS) {
    const bin = binPath(join(root, server.packageDir), server.bin);
    if (!existsSync(bin)) missing.push(bin);
    entries[server.name] = {
      type: "stdio",
      command: process.execPath,
      args: [bin, ...server.args],
      env: { ...env },
    };
  }
  return { config: { mcpServers: entries as Record<McpServerName, McpServerEntry> }, missing };
}

/** The absolute path of a package's bin, read from its package.json in this workspace. */
export function binPath(packageDir: string, binName: string): string {
  const manifestPath = join(packageDir, "package.json");
  let manifest: { bin?: unknown };
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { bin?: unknown };
  } catch (cause) {
    throw new LoominalError(
      "internal",
      `cannot read ${manifestPath}; is this a complete Loominal checkout?`,
      {
        cause,
      },
    );
  }
  const bins = manifest.bin;
  const relative =
    typeof bins === "object" && bins !== null && binName in bins
      ? (bins as Record<string, unknown>)[binName]
      : undefined;
  if (typeof relative !== "string") {
    throw new LoominalError("internal", `${manifestPath} declares no bin named ${binName}`);
  }
  return resolve(packageDir, relative);
}

/**
 * The workspace this CLI belongs to: the nearest directory above it with pnpm-workspace.yaml. The MCP
 * servers are run from there rather than being dependencies of the CLI, so a server that does not
 * build never keeps the CLI from building.
 */
export function workspaceRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "pnpm-workspace.yaml"))) return realpathSync(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new LoominalError(
    "internal",
    "the loominal CLI is not inside a Loominal checkout (no pnpm-workspace.yaml above it); run it from the repository",
  );
}
