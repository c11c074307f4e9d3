import type { LoominalConfig, NatsSettings } from "@loominal/fabric";
import { EXIT_NOT_RUNNING } from "../commands/nats.js";
import type { CliContext } from "../context.js";
import { DEFAULT_NATS_PORT, LocalNats, type LocalNatsStatus, type StartedServer } from "../local-nats.js";
import { requireNatsServer } from "../nats-binary.js";
import { projectConfig } from "../project-config.js";

/** `nats start`: starts the local nats-server unless it is running. */
export async function natsStart(ctx: CliContext): Promise<void> {
  const config = projectConfig(ctx);
  const local = new LocalNats(config.projectDir);
  const server = await local.start({
    bin: requireNatsServer(ctx.env),
    preferredPort: preferredPort(config.nats),
  });
  printStarted(ctx, local, server);
  printConnectHint(ctx, server.url);
}

/** `nats stop`: stops the local nats-server started by 'up' or 'nats start'. */
export async function natsStop(ctx: CliContext): Promise<void> {
  const local = new LocalNats(projectConfig(ctx).projectDir);
  const pid = await local.stop();
  ctx.out(pid === undefined ? "The local nats-server is not running." : `Stopped nats-server (pid ${pid}).`);
}

/** `nats status`: exit 0 running, 1 not answering, EXIT_NOT_RUNNING not running. */
export async function natsStatus(
  ctx: CliContext,
  opts: { json?: boolean },
  setExit: (code: number) => void,
): Promise<void> {
  const status = await new LocalNats(projectConfig(ctx).projectDir).status();
  if (opts.json) ctx.out(JSON.stringify(statusJson(status), null, 2));
  else printStatus(ctx, status);
  setExit(!status.running ? EXIT_NOT_RUNNING : status.reachable ? 0 : 1);
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/**
 * The port a local server should take: the one NATS_URL names when it is a single loopback URL (so the
 * existing setting keeps working), else the NATS default.
 */
export function preferredPort(nats: NatsSettings): number {
  const [only, ...rest] = nats.servers;
  if (only === undefined || rest.length > 0) return DEFAULT_NATS_PORT;
  try {
    const url = new URL(/^[a-z]+:\/\//.test(only) ? only : `nats://${only}`);
    if (!LOOPBACK_HOSTS.has(url.hostname)) return DEFAULT_NATS_PORT;
    return url.port === "" ? DEFAULT_NATS_PORT : Number(url.port);
  } catch {
    return DEFAULT_NATS_PORT;
  }
}

export function printStarted(ctx: CliContext, local: LocalNats, server: StartedServer): void {
  ctx.out(
    server.started
      ? `Started nats-server ${server.version} with JetStream at ${server.url} (pid ${server.pid}).`
      : `The local nats-server is already running at ${server.url} (pid ${server.pid}, nats-server ${server.version}).`,
  );
  ctx.out(`  store: ${local.paths.storeDir}`);
  ctx.out(`  log:   ${local.paths.logFile}`);
  ctx.out(`  stop:  ${ctx.commandName} nats stop`);
}

/**
 * How to point other processes at the server. `url` never holds credentials; when the configuration has
 * some, the hint says where they go instead of printing them.
 */
export function printConnectHint(ctx: CliContext, url: string, config?: LoominalConfig): void {
  ctx.out("");
  ctx.out("Point Loominal processes at it:");
  ctx.out(`  export NATS_URL=${url}`);
  const nats = config?.nats;
  if (nats && (nats.user !== undefined || nats.token !== undefined || nats.credsFile !== undefined)) {
    ctx.out(
      "  and give them the same credentials (NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_CREDS; " +
        "user:password@ in NATS_URL works too). They are never printed.",
    );
  }
  ctx.out("Then add the MCP servers to the project's .mcp.json for Claude Code:");
  ctx.out(`  ${ctx.commandName} mcp-config --write`);
}

function printStatus(ctx: CliContext, status: LocalNatsStatus): void {
  if (!status.running) {
    ctx.out(`The local nats-server is not running. Start it with '${ctx.commandName} up'.`);
    return;
  }
  ctx.out(`The local nats-server is running${status.reachable ? "" : " but not answering"}.`);
  ctx.out(`  pid:       ${status.pid}`);
  ctx.out(`  url:       ${status.url ?? "unknown"}`);
  if (status.reachable) {
    ctx.out(`  version:   ${status.version ?? "unknown"}`);
    ctx.out(`  jetstream: ${status.jetstream ? "enabled" : "disabled"}`);
  } else {
    ctx.out(`  problem:   ${status.reason ?? "unknown"}`);
  }
  ctx.out(`  store:     ${status.paths.storeDir}`);
  ctx.out(`  log:       ${status.paths.logFile}`);
}

function statusJson(status: LocalNatsStatus): Record<string, unknown> {
  const { paths, ...rest } = status;
  return { ...rest, storeDir: paths.storeDir, pidFile: paths.pidFile, logFile: paths.logFile };
}
