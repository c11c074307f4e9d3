import { Command, CommanderError } from "commander";
import { registerGuardCommands } from "./commands/guard.js";
import { registerHookCommand } from "./commands/hook.js";
import { registerMcpConfigCommand } from "./commands/mcp-config.js";
import { registerNatsCommands } from "./commands/nats.js";
import { registerNatsConfigCommand } from "./commands/nats-config.js";
import { registerNatsProvisionCommand } from "./commands/nats-provision.js";
import { registerServiceCommands } from "./commands/services.js";
import { registerUpCommand } from "./commands/up.js";
import { registerVersionCommand } from "./commands/version.js";
import { registerWeftCommands } from "./commands/weft.js";
import type { CliContext } from "./context.js";
import { cliVersion } from "./version.js";

/** Exit codes: 0 done, 1 failed, 2 bad usage or configuration (the message names what to fix). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * The `loominal` command tree. `setExit` lets a command report a non-zero status without failing. Building
 * it loads commander and nothing heavy: each action imports what it needs (src/actions/) when it runs.
 */
export function createProgram(ctx: CliContext, setExit: (code: number) => void = () => undefined): Command {
  const program = new Command()
    .name("loominal")
    .description("Loominal: a NATS JetStream fabric for AI coding agents.")
    .version(cliVersion(), "-V, --version", "print the loominal version")
    .showHelpAfterError(`(run '${ctx.commandName} --help' for usage)`)
    .configureOutput({
      writeOut: (s) => ctx.out(s.replace(/\n$/, "")),
      writeErr: (s) => ctx.err(s.replace(/\n$/, "")),
    })
    .exitOverride();
  registerUpCommand(program, ctx, setExit);
  registerServiceCommands(program, ctx, setExit);
  registerNatsCommands(program, ctx, setExit);
  registerMcpConfigCommand(program, ctx);
  registerNatsConfigCommand(program, ctx);
  registerNatsProvisionCommand(program, ctx);
  registerVersionCommand(program, ctx);
  registerGuardCommands(program, ctx, setExit);
  registerHookCommand(program, ctx);
  registerWeftCommands(program, ctx);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI on `argv` (process.argv shape) and resolves with the exit code; never throws. */
export async function runCli(ctx: CliContext, argv: string[]): Promise<number> {
  let code = EXIT_OK;
  const program = createProgram(ctx, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    return await reportError(ctx, err);
  }
}

/**
 * The one place errors become messages and exit codes. The protocol (and zod with it) loads only here,
 * past commander's own errors: `--help` and `--version` never need it.
 */
async function reportError(ctx: CliContext, err: unknown): Promise<number> {
  if (err instanceof CommanderError) {
    // Commander already printed its message (or the help / version it was asked for).
    return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  const { isLoominalError } = await import("@loominal/protocol");
  if (isLoominalError(err)) {
    ctx.err(`loominal: ${err.message}`);
    return err.code === "invalid_config" || err.code === "invalid_input" || err.code === "invalid_name"
      ? EXIT_USAGE
      : EXIT_FAILURE;
  }
  ctx.err(`loominal: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return EXIT_FAILURE;
}
