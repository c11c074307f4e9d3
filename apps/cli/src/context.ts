/** What a command needs from the process; tests and the bin fill it differently. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Human or JSON output: what the user asked for. */
  out: (text: string) => void;
  /** Diagnostics and warnings, kept off stdout so `loominal mcp-config > .mcp.json` stays clean. */
  err: (text: string) => void;
  /** How the user invoked the CLI (`./loominal` via the bootstrap script), for hints. */
  commandName: string;
}

export function processContext(): CliContext {
  return {
    env: process.env,
    cwd: process.cwd(),
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    commandName: process.env.LOOMINAL_CLI_COMMAND?.trim() || "loominal",
  };
}
