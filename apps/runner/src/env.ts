import { hostname } from "node:os";
import { type Env, type EnvValues, type NatsSettings, natsSettingsFromEnv, parseEnv } from "@loominal/fabric";
import { ConfigError, NAME_TOKEN_RE, randomId } from "@loominal/protocol";
import { z } from "zod";

const int = (min: number, fallback: number) => z.coerce.number().int().min(min).default(fallback);
const ms = (min: number, fallback: number) => int(min, fallback);
const rate = z.coerce.number().min(0).max(1).default(0);

/** Every variable the runner reads (besides the NATS_* connection variables), with its default. */
export const RUNNER_ENV = {
  RUNNER_PORT: {
    schema: z.coerce.number().int().min(0).max(65535).default(3100),
    description: "HTTP port (0 picks a free one)",
  },
  RUNNER_HOST: { schema: z.string().default("127.0.0.1"), description: "HTTP listen address" },
  RUNNER_REPLICA_ID: {
    schema: z
      .string()
      .regex(NAME_TOKEN_RE, "must be lower-case letters, digits, - and _ (at most 64)")
      .optional(),
    description: "this replica's id; generated from the host name when unset",
  },
  RUNNER_AUTH_TOKEN: {
    schema: z.string().min(16, "must be at least 16 characters").optional(),
    description: "Bearer token every HTTP request must carry; required unless RUNNER_HOST is loopback",
    secret: true,
  },
  RUNNER_MAX_CONCURRENT_RUNS: {
    schema: int(1, 64),
    description: "runs executing at once across all replicas (cluster-wide)",
  },
  RUNNER_MAX_RUNS_PER_USER: {
    schema: int(1, 8),
    description: "runs one user_id may have queued or running at once (cluster-wide)",
  },
  RUNNER_QUEUE_MAX: {
    schema: int(0, 256),
    description: "run requests that may wait for a slot (cluster-wide); beyond it, 429 backpressure",
  },
  RUNNER_REPLICA_MAX_RUNS: {
    schema: z.coerce.number().int().min(1).optional(),
    description: "runs this replica executes at once (default: RUNNER_MAX_CONCURRENT_RUNS)",
  },
  RUNNER_HEARTBEAT_INTERVAL_MS: { schema: ms(50, 1_000), description: "replica heartbeat period (ms)" },
  RUNNER_REPLICA_TTL_MS: {
    schema: ms(200, 5_000),
    description: "a replica whose heartbeat is older than this is dead (ms; the runner-replicas bucket TTL)",
  },
  RUNNER_REAPER_INTERVAL_MS: {
    schema: ms(50, 1_000),
    description: "how often the reaper looks for runs of dead replicas (ms)",
  },
  RUNNER_DEATH_CONFIRM_MS: {
    schema: ms(0, 1_500),
    description:
      "a replica whose NATS connection has been gone this long is dead before its TTL; 0: off (ms)",
  },
  RUNNER_LOCK_TTL_MS: {
    schema: ms(500, 30_000),
    description: "session and agent_id locks expire this long after their run stops refreshing them (ms)",
  },
  RUNNER_ADMIT_ACK_WAIT_MS: {
    schema: ms(1_000, 30_000),
    description: "a run request held by a replica that stops answering is redelivered after this (ms)",
  },
  RUNNER_DRAIN_TIMEOUT_MS: {
    schema: ms(0, 30_000),
    description: "on SIGTERM, how long running runs may finish before they are failed (ms)",
  },
  RUNNER_EVENTS_MAX_AGE_MS: {
    schema: ms(1_000, 86_400_000),
    description: "how long run events are kept (ms)",
  },
  RUNNER_CHANNELS_MAX_AGE_MS: {
    schema: ms(1_000, 86_400_000),
    description: "how long agent-tool channel messages are kept (ms)",
  },
  RUNNER_NATS_REPLICAS: {
    schema: z.coerce.number().int().min(1).max(5).default(1),
    description: "replicas of the runner's streams and buckets (3 on a 3-node NATS cluster)",
  },
  RUNNER_TOOL_CONCURRENCY: {
    schema: int(1, 8),
    description: "tool calls of one step run in parallel, at most this many",
  },
  RUNNER_SSE_KEEPALIVE_MS: { schema: ms(100, 20_000), description: "SSE keepalive comment period (ms)" },
  RUNNER_RETRY_BASE_MS: {
    schema: ms(1, 100),
    description: "first retry delay after a provider outage; multiplied by 3 per retry (ms)",
  },
  RUNNER_MAX_RETRIES: { schema: int(0, 5), description: "retries of one provider call before falling back" },
  RUNNER_MAX_FALLBACKS: { schema: int(0, 3), description: "fallbacks to the next provider, per run" },
  RUNNER_AGENTS: {
    schema: z.string().optional(),
    description: "agent definitions file (YAML or JSON); the mock-* agents exist without it",
  },
  RUNNER_MOCK_LATENCY_MS: { schema: ms(0, 50), description: "mock provider: base latency per call (ms)" },
  RUNNER_MOCK_JITTER_MS: { schema: ms(0, 25), description: "mock provider: added uniform jitter (ms)" },
  RUNNER_MOCK_429_RATE: { schema: rate, description: "mock provider: share of calls answered 429" },
  RUNNER_MOCK_500_RATE: { schema: rate, description: "mock provider: share of calls answered 500" },
  ANTHROPIC_API_KEY: { schema: z.string().optional(), description: "Anthropic API key", secret: true },
  ANTHROPIC_BASE_URL: {
    schema: z.url().default("https://api.anthropic.com"),
    description: "Anthropic Messages API base URL",
  },
  OPENAI_API_KEY: {
    schema: z.string().optional(),
    description: "API key for the openai provider",
    secret: true,
  },
  OPENAI_BASE_URL: {
    schema: z.url().default("https://api.openai.com/v1"),
    description: "Chat Completions base URL (any compatible endpoint, such as a local model server)",
  },
} as const;

export type RunnerEnv = EnvValues<typeof RUNNER_ENV>;

export interface RunnerConfig {
  nats: NatsSettings;
  port: number;
  host: string;
  replicaId: string;
  authToken: string | undefined;
  maxConcurrentRuns: number;
  maxRunsPerUser: number;
  queueMax: number;
  replicaMaxRuns: number;
  heartbeatIntervalMs: number;
  replicaTtlMs: number;
  reaperIntervalMs: number;
  deathConfirmMs: number;
  lockTtlMs: number;
  admitAckWaitMs: number;
  drainTimeoutMs: number;
  eventsMaxAgeMs: number;
  channelsMaxAgeMs: number;
  natsReplicas: number;
  toolConcurrency: number;
  sseKeepaliveMs: number;
  retryBaseMs: number;
  maxRetries: number;
  maxFallbacks: number;
  agentsFile: string | undefined;
  mock: MockDefaults;
  anthropic: { apiKey: string | undefined; baseUrl: string };
  openai: { apiKey: string | undefined; baseUrl: string };
}

export interface MockDefaults {
  latencyMs: number;
  jitterMs: number;
  rate429: number;
  rate500: number;
}

/** Whether an address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function defaultReplicaId(): string {
  const base = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 40);
  return `${base || "runner"}-${randomId().slice(0, 8)}`;
}

/**
 * Reads the runner's configuration from the environment. Every bad variable is reported at once in one
 * ConfigError naming it; rules that involve two variables are checked afterwards.
 */
export function loadRunnerConfig(env: Env = process.env): RunnerConfig {
  const e = parseEnv(RUNNER_ENV, env);
  const nats = natsSettingsFromEnv(env);
  const problems: string[] = [];
  if (!isLoopbackHost(e.RUNNER_HOST) && e.RUNNER_AUTH_TOKEN === undefined) {
    problems.push(
      `RUNNER_AUTH_TOKEN is not set but RUNNER_HOST is ${JSON.stringify(e.RUNNER_HOST)}: set a token (16+ characters) or listen on 127.0.0.1`,
    );
  }
  if (e.RUNNER_REPLICA_TTL_MS < 2 * e.RUNNER_HEARTBEAT_INTERVAL_MS) {
    problems.push(
      `RUNNER_REPLICA_TTL_MS (${e.RUNNER_REPLICA_TTL_MS}) must be at least twice RUNNER_HEARTBEAT_INTERVAL_MS (${e.RUNNER_HEARTBEAT_INTERVAL_MS}), or one late heartbeat kills a live replica`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems.join("; "), { details: { variables: problems } });
  return {
    nats,
    port: e.RUNNER_PORT,
    host: e.RUNNER_HOST,
    replicaId: e.RUNNER_REPLICA_ID ?? defaultReplicaId(),
    authToken: e.RUNNER_AUTH_TOKEN,
    maxConcurrentRuns: e.RUNNER_MAX_CONCURRENT_RUNS,
    maxRunsPerUser: e.RUNNER_MAX_RUNS_PER_USER,
    queueMax: e.RUNNER_QUEUE_MAX,
    replicaMaxRuns: e.RUNNER_REPLICA_MAX_RUNS ?? e.RUNNER_MAX_CONCURRENT_RUNS,
    heartbeatIntervalMs: e.RUNNER_HEARTBEAT_INTERVAL_MS,
    replicaTtlMs: e.RUNNER_REPLICA_TTL_MS,
    reaperIntervalMs: e.RUNNER_REAPER_INTERVAL_MS,
    deathConfirmMs: e.RUNNER_DEATH_CONFIRM_MS,
    lockTtlMs: e.RUNNER_LOCK_TTL_MS,
    admitAckWaitMs: e.RUNNER_ADMIT_ACK_WAIT_MS,
    drainTimeoutMs: e.RUNNER_DRAIN_TIMEOUT_MS,
    eventsMaxAgeMs: e.RUNNER_EVENTS_MAX_AGE_MS,
    channelsMaxAgeMs: e.RUNNER_CHANNELS_MAX_AGE_MS,
    natsReplicas: e.RUNNER_NATS_REPLICAS,
    toolConcurrency: e.RUNNER_TOOL_CONCURRENCY,
    sseKeepaliveMs: e.RUNNER_SSE_KEEPALIVE_MS,
    retryBaseMs: e.RUNNER_RETRY_BASE_MS,
    maxRetries: e.RUNNER_MAX_RETRIES,
    maxFallbacks: e.RUNNER_MAX_FALLBACKS,
    agentsFile: e.RUNNER_AGENTS,
    mock: {
      latencyMs: e.RUNNER_MOCK_LATENCY_MS,
      jitterMs: e.RUNNER_MOCK_JITTER_MS,
      rate429: e.RUNNER_MOCK_429_RATE,
      rate500: e.RUNNER_MOCK_500_RATE,
    },
    anthropic: { apiKey: e.ANTHROPIC_API_KEY, baseUrl: e.ANTHROPIC_BASE_URL },
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL },
  };
}
