import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function registerGuardCommands(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const guard = program
    .command("guard")
    .description("git hooks that refuse commits touching paths another live agent leased exclusively");
  guard
    .command("install")
    .description("add the guard as this repository's pre-commit and pre-push hooks")
    .option("--force", "replace existing pre-commit/pre-push hooks that are not the guard's")
    .action(async (opts: { force?: boolean }) =>
      (await import("../actions/guard.js")).guardInstall(ctx, opts),
    );
  guard
    .command("check")
    .description(
      "what the hooks run: exit 1 naming holder and reason when a change touches another agent's exclusive lease",
    )
    .option(
      "--hook <hook>",
      "pre-commit (staged files) or pre-push (commits on stdin, as git passes them)",
      "pre-commit",
    )
    .action(async (opts: { hook: string }) =>
      (await import("../actions/guard.js")).guardCheck(ctx, opts, setExit),
    );
}
