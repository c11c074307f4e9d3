import type { Command } from "commander";
import type { CliContext } from "../context.js";

/** Exit code of `status` when `up` has started nothing here (as `nats status`). */
export const EXIT_NOT_STARTED = 3;

/** `loominal down` and `loominal status`: what `up` started, by the pids it recorded. */
export function registerServiceCommands(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  program
    .command("down")
    .description("stop what 'up' started (and only that, by the pids it recorded in .loominal/up.json)")
    .action(async () => (await import("../actions/services.js")).down(ctx));

  program
    .command("status")
    .description(
      "NATS, Weft, the Runner, agents online and queued work; exit 1 when something 'up' started is down, " +
        `${EXIT_NOT_STARTED} when 'up' started nothing here`,
    )
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) =>
      (await import("../actions/services.js")).status(ctx, opts, setExit),
    );
}
