import { HOOK_EVENTS } from "@loominal/warp/hook-client";
import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function registerHookCommand(program: Command, ctx: CliContext): void {
  program
    .command("hook")
    .description(
      "a Claude Code hook (SessionStart, UserPromptSubmit, PostToolUse, Stop): unread direct messages and lease conflicts, each shown once",
    )
    .argument("<event>", HOOK_EVENTS.join(" | "))
    .action(async (event: string) => (await import("../hook-run.js")).runHook(ctx, event));
}
