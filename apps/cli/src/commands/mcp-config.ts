import type { Command } from "commander";
import type { McpConfigOptions } from "../actions/mcp-config.js";
import type { CliContext } from "../context.js";

export function registerMcpConfigCommand(program: Command, ctx: CliContext): void {
  program
    .command("mcp-config")
    .description(
      "print a .mcp.json for Claude Code with loominal-warp, loominal-pattern, loominal-shuttle and loominal-weft " +
        "(absolute paths to the built servers, NATS_URL); --write merges it into the project's .mcp.json",
    )
    .option("--write", "merge the servers into the project's .mcp.json, keeping every other server")
    .option("--force", "with --write: replace Loominal entries that differ from what would be written")
    .option("--claude", "print the equivalent 'claude mcp add' commands instead")
    .option(
      "--hooks",
      "merge the loominal hooks into the project's .claude/settings.json and print what changed",
    )
    .option(
      "--tools <profile>",
      "set LOOMINAL_TOOLS for every server: core (the everyday tools, the rest through <server>_more; the servers' default) or full",
    )
    .option(
      "--scope <scope>",
      "with --claude: local, project or user (what 'claude mcp add' takes)",
      "project",
    )
    .action(async (opts: McpConfigOptions) =>
      (await import("../actions/mcp-config.js")).mcpConfig(ctx, opts),
    );
}
