import { join } from "node:path";
import type { LoominalConfig } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import { z } from "zod";
import { mergeClaudeHooks } from "../claude-hooks.js";
import type { CliContext } from "../context.js";
import { LocalNats } from "../local-nats.js";
import { buildMcpConfig } from "../mcp-config.js";
import { claudeAddCommands, mergeMcpJson } from "../mcp-json.js";
import { projectConfig } from "../project-config.js";

/** The values of LOOMINAL_TOOLS, which each MCP server validates the same way at start-up. */
const toolProfileSchema = z.enum(["core", "full"]);

export interface McpConfigOptions {
  write?: boolean;
  force?: boolean;
  claude?: boolean;
  hooks?: boolean;
  tools?: string;
  scope: string;
}

/** `mcp-config`: prints, writes or turns into `claude mcp add` commands the project's MCP servers. */
export function mcpConfig(ctx: CliContext, opts: McpConfigOptions): void {
  const config = projectConfig(ctx);
  if (opts.hooks) {
    const path = join(config.projectDir, ".claude", "settings.json");
    for (const line of mergeClaudeHooks(path)) ctx.out(`${path}: ${line}`);
    return;
  }
  const env = mcpEnv(ctx, config, new LocalNats(config.projectDir));
  if (opts.tools !== undefined) {
    const profile = toolProfileSchema.safeParse(opts.tools);
    if (!profile.success) {
      throw new LoominalError(
        "invalid_input",
        `--tools must be core or full (what LOOMINAL_TOOLS takes), got "${opts.tools}"`,
      );
    }
    env.LOOMINAL_TOOLS = profile.data;
  }
  const { config: mcp, missing } = buildMcpConfig(env);
  if (opts.claude) {
    if (!["local", "project", "user"].includes(opts.scope)) {
      throw new LoominalError("invalid_input", `--scope must be local, project or user, got "${opts.scope}"`);
    }
    for (const line of claudeAddCommands(mcp.mcpServers, opts.scope as "local" | "project" | "user")) {
      ctx.out(line);
    }
  } else if (opts.write) {
    const merged = mergeMcpJson(join(config.projectDir, ".mcp.json"), mcp.mcpServers, {
      force: opts.force === true,
    });
    ctx.out(`${merged.file}:`);
    for (const s of merged.servers) ctx.out(`  ${s.name}: ${s.outcome}`);
    if (merged.kept.length > 0) ctx.out(`  kept as they were: ${merged.kept.join(", ")}`);
    ctx.out(
      env.LOOMINAL_TOOLS === undefined
        ? "Tools: each server lists its core tools and reaches the rest through <server>_more (LOOMINAL_TOOLS=core); --tools full lists every tool."
        : `Tools: LOOMINAL_TOOLS=${env.LOOMINAL_TOOLS} for every server.`,
    );
    ctx.out("Start Claude Code in this directory (it asks once before using the project's servers).");
  } else {
    ctx.out(JSON.stringify(mcp, null, 2));
  }
  for (const bin of missing) {
    ctx.err(`warning: ${bin} does not exist yet; build first (running '${ctx.commandName}' builds).`);
  }
}

/**
 * The environment each MCP server gets. NATS_URL: the one configured (env or .loominal.json); otherwise
 * this project's running local server, which may sit on another port than the default. Secrets are
 * left out: the snippet is printed and usually committed.
 */
function mcpEnv(ctx: CliContext, config: LoominalConfig, local: LocalNats): Record<string, string> {
  const { nats } = config;
  const pinned = config.natsUrlSource !== "default";
  const localPid = pinned ? undefined : local.runningPid();
  const localUrl = localPid === undefined ? undefined : local.urlOf(localPid);
  // loadConfig has already taken any user:password@ out of the server URLs.
  const urls = localUrl === undefined ? nats.servers : [localUrl];
  const env: Record<string, string> = { NATS_URL: urls.join(",") };
  if (nats.credsFile) env.NATS_CREDS = nats.credsFile;
  if (nats.tls?.caFile) env.NATS_TLS_CA = nats.tls.caFile;
  if (nats.tls?.certFile) env.NATS_TLS_CERT = nats.tls.certFile;
  if (nats.tls?.keyFile) env.NATS_TLS_KEY = nats.tls.keyFile;
  if (nats.user || nats.token) {
    ctx.err(
      "warning: credentials (NATS_USER/NATS_PASSWORD, NATS_TOKEN, or user:password@ in NATS_URL) are not " +
        "copied into the config; add NATS_USER/NATS_PASSWORD or NATS_TOKEN to each server's env yourself.",
    );
  }
  return env;
}
