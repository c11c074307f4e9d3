import { readFileSync } from "node:fs";
import { ConfigError } from "@loominal/protocol";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

/** The tools an agent may be given. */
export const TOOL_NAMES = [
  "channel_publish",
  "channel_subscribe",
  "memory_set",
  "memory_get",
  "evaluation_submit",
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

export const PROVIDER_KINDS = ["mock", "anthropic", "openai"] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

const mockKnobsSchema = z
  .object({
    latencyMs: z.number().int().min(0).optional(),
    jitterMs: z.number().int().min(0).optional(),
    rate429: z.number().min(0).max(1).optional(),
    rate500: z.number().min(0).max(1).optional(),
  })
  .strict();
export type MockKnobs = z.infer<typeof mockKnobsSchema>;

const providerEntrySchema = z
  .object({
    provider: z.enum(PROVIDER_KINDS),
    /** Overrides the agent's model for this provider. */
    model: z.string().min(1).optional(),
    /** Overrides ANTHROPIC_BASE_URL / OPENAI_BASE_URL. */
    baseUrl: z.url().optional(),
    /** Name of the environment variable holding this provider's key (default ANTHROPIC_API_KEY / OPENAI_API_KEY). */
    apiKeyEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .optional(),
    maxTokens: z.number().int().min(1).optional(),
    /** Mock knobs; each falls back to the RUNNER_MOCK_* variable. */
    mock: mockKnobsSchema.optional(),
  })
  .strict();
export type ProviderEntry = z.infer<typeof providerEntrySchema>;

export const agentDefinitionSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be lower-case letters, digits, - and _"),
    description: z.string().optional(),
    /** The provider chain: the first is used; on an outage the next, up to RUNNER_MAX_FALLBACKS times. */
    providers: z.array(providerEntrySchema).min(1),
    /** Default model for every provider entry without its own. */
    model: z.string().min(1).optional(),
    system: z.string().default(""),
    tools: z.array(z.enum(TOOL_NAMES)).default([...TOOL_NAMES]),
    maxIterations: z.number().int().min(1).max(1_000).default(16),
  })
  .strict()
  .refine((a) => a.providers.every((p) => p.model !== undefined || a.model !== undefined), {
    message: "every provider needs a model: set the agent's model or the provider's",
    path: ["model"],
  });
export type AgentDefinition = z.infer<typeof agentDefinitionSchema>;

const agentsFileSchema = z.array(agentDefinitionSchema);

const BUILT_IN_SYSTEM =
  "You are a scripted test agent. Your behaviour depends only on the prompt and the tool results.";

/** The agents that exist without any agents file; all run on the mock provider. */
export const BUILT_IN_AGENTS: readonly AgentDefinition[] = [
  [
    "mock-generic",
    "generic",
    "Answers the prompt; `[tools:N]` makes N parallel memory_get calls, `[loop]` calls a tool every step.",
  ],
  ["mock-researcher", "researcher", "Circuit step 1: stores research and announces it."],
  ["mock-editor", "editor", "Circuit step 2: waits for the research, edits it, announces the edit."],
  ["mock-evaluator", "evaluator", "Circuit step 3: waits for the edit, scores it, submits the evaluation."],
].map(([name, model, description]) =>
  agentDefinitionSchema.parse({
    name,
    description,
    model,
    providers: [{ provider: "mock" }],
    system: BUILT_IN_SYSTEM,
  }),
);

/** Parses an agents file (YAML, or JSON, which is YAML too): a list, or `{ agents: [...] }`. */
export function parseAgentsFile(text: string, source: string): AgentDefinition[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source} is not valid YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  const list =
    raw !== null && typeof raw === "object" && !Array.isArray(raw) && "agents" in raw
      ? (raw as { agents: unknown }).agents
      : raw;
  const parsed = agentsFileSchema.safeParse(list);
  if (!parsed.success) {
    const why = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`)
      .join("; ");
    throw new ConfigError(`${source} has invalid agent definitions: ${why}`);
  }
  const seen = new Set<string>();
  for (const a of parsed.data) {
    if (seen.has(a.name)) throw new ConfigError(`${source} defines agent ${a.name} twice`);
    seen.add(a.name);
  }
  return parsed.data;
}

/** The agents a replica knows: the built-ins, then the file's (a file entry replaces a built-in of its name). */
export class AgentCatalog {
  readonly #agents = new Map<string, AgentDefinition>();

  constructor(definitions: readonly AgentDefinition[] = []) {
    for (const a of BUILT_IN_AGENTS) this.#agents.set(a.name, a);
    for (const a of definitions) this.#agents.set(a.name, a);
  }

  /** RUNNER_AGENTS (when set) on top of the built-ins. */
  static load(file: string | undefined): AgentCatalog {
    if (file === undefined) return new AgentCatalog();
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(`RUNNER_AGENTS names ${file}, which cannot be read: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new AgentCatalog(parseAgentsFile(text, `RUNNER_AGENTS (${file})`));
  }

  get(name: string): AgentDefinition | undefined {
    return this.#agents.get(name);
  }

  list(): AgentDefinition[] {
    return [...this.#agents.values()];
  }
}
