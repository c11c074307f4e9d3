import { ConfigError, DEFAULT_BOUNDARY, nameTokenProblem } from "@loominal/protocol";

/** What one `loominal-agent` process does. */
export interface AgentOptions {
  capabilities: string[];
  /** Boundaries it claims in (at least one; `default` when none is given). */
  boundaries: string[];
  agentType: string;
  /** Run per item through `/bin/sh -c`. */
  command: string;
  concurrency: number;
  /** Exit after this long without work (ms); 0: never. */
  idleTimeoutMs: number;
  /** How much command output goes into the result (bytes); the rest stays in the output file. */
  maxOutputBytes: number;
  /** Where output files go (default `.loominal/agent-output` under the working directory). */
  outputDir: string;
  spinUpId: string | undefined;
  targetId: string | undefined;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `30s`, `10m`, `1h`, `500ms`, or a bare number of ms. */
export function parseDuration(value: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m?.[1])
    throw new ConfigError(
      `${name} ${JSON.stringify(value)} is not a duration; use e.g. 30s, 10m, 1h or 500ms`,
    );
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? "ms"] ?? 1));
}

function tokens(values: string[], kind: "capability" | "boundary", name: string): string[] {
  const out = values
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
  for (const v of out) {
    const problem = nameTokenProblem(v, kind);
    if (problem) throw new ConfigError(`${name}: ${problem}`);
  }
  return [...new Set(out)];
}

/** Flags win over environment variables (LOOMINAL_CAPABILITY, LOOMINAL_BOUNDARY, …), which win over defaults. */
export function resolveOptions(
  flags: {
    capability?: string[];
    boundary?: string[];
    agentType?: string;
    command?: string;
    concurrency?: string;
    idleTimeout?: string;
    maxOutput?: string;
    outputDir?: string;
  },
  env: Record<string, string | undefined>,
  cwd: string,
): AgentOptions {
  const pick = (flag: string | undefined, variable: string) => {
    const v = flag ?? env[variable];
    return v === undefined || v.trim() === "" ? undefined : v;
  };
  const capabilities = tokens(
    flags.capability && flags.capability.length > 0
      ? flags.capability
      : (env.LOOMINAL_CAPABILITY ?? "").split(","),
    "capability",
    "--capability / LOOMINAL_CAPABILITY",
  );
  if (capabilities.length === 0)
    throw new ConfigError("no capability: pass --capability <name> (repeatable) or set LOOMINAL_CAPABILITY");
  const boundaries = tokens(
    flags.boundary && flags.boundary.length > 0 ? flags.boundary : (env.LOOMINAL_BOUNDARY ?? "").split(","),
    "boundary",
    "--boundary / LOOMINAL_BOUNDARY",
  );
  const agentType = pick(flags.agentType, "LOOMINAL_AGENT_TYPE") ?? "custom";
  const typeProblem = nameTokenProblem(agentType, "agent type");
  if (typeProblem) throw new ConfigError(`--agent-type / LOOMINAL_AGENT_TYPE: ${typeProblem}`);
  const command = pick(flags.command, "LOOMINAL_COMMAND");
  if (!command) throw new ConfigError("no command: pass --command '<shell command>' or set LOOMINAL_COMMAND");
  const concurrencyRaw = pick(flags.concurrency, "LOOMINAL_CONCURRENCY") ?? "1";
  const concurrency = Number(concurrencyRaw);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new ConfigError(
      `--concurrency / LOOMINAL_CONCURRENCY ${JSON.stringify(concurrencyRaw)} must be an integer from 1 to 64`,
    );
  const idle = pick(flags.idleTimeout, "LOOMINAL_IDLE_TIMEOUT");
  const idleTimeoutMs =
    idle === undefined ? 0 : parseDuration(idle, "--idle-timeout / LOOMINAL_IDLE_TIMEOUT");
  const maxOutputRaw = pick(flags.maxOutput, "LOOMINAL_MAX_OUTPUT_BYTES") ?? "65536";
  const maxOutputBytes = Number(maxOutputRaw);
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes < 0 || maxOutputBytes > 200_000)
    throw new ConfigError("--max-output / LOOMINAL_MAX_OUTPUT_BYTES must be an integer from 0 to 200000");
  const hex = (name: string) => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    if (!/^[0-9a-f]{32}$/.test(v)) throw new ConfigError(`${name} must be 32 lower-case hex characters`);
    return v;
  };
  return {
    capabilities,
    boundaries: boundaries.length > 0 ? boundaries : [DEFAULT_BOUNDARY],
    agentType,
    command,
    concurrency,
    idleTimeoutMs,
    maxOutputBytes,
    outputDir: pick(flags.outputDir, "LOOMINAL_OUTPUT_DIR") ?? `${cwd}/.loominal/agent-output`,
    spinUpId: hex("LOOMINAL_SPINUP_ID"),
    targetId: hex("LOOMINAL_TARGET_ID"),
  };
}
