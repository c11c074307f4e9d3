import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { HOOK_EVENTS, runHook } from "../hook-run.js";

export function registerHookCommand(program: Command, ctx: CliContext): void {
  program
    .command("hook")
    .description(
      "a Claude Code hook (SessionStart, UserPromptSubmit, PostToolUse, Stop): unread direct messages and lease conflicts, each shown once",
    )
    .argument("<event>", HOOK_EVENTS.join(" | "))
    .action((event: string) => runHook(ctx, event));
}
