import type { Command } from "commander";
import type { CliContext } from "../context.js";

/** Exit code of `nats status` when no local server runs (as LSB init scripts do). */
export const EXIT_NOT_RUNNING = 3;

export function registerNatsCommands(
  program: Command,
  ctx: CliContext,
  setExit: (code: number) => void,
): void {
  const nats = program
    .command("nats")
    .description(`the project's local nats-server (JetStream, store under .loominal/nats/)`);

  nats
    .command("start")
    .description("start the local nats-server unless it is running")
    .action(async () => (await import("../actions/nats.js")).natsStart(ctx));

  nats
    .command("stop")
    .description("stop the local nats-server started by 'up' or 'nats start'")
    .action(async () => (await import("../actions/nats.js")).natsStop(ctx));

  nats
    .command("status")
    .description(
      `report the local nats-server: exit 0 running, 1 not answering, ${EXIT_NOT_RUNNING} not running`,
    )
    .option("--json", "print the status as JSON")
    .action(async (opts: { json?: boolean }) =>
      (await import("../actions/nats.js")).natsStatus(ctx, opts, setExit),
    );
}
