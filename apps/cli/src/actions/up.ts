import { type LoominalConfig, NatsPermissionError, NotProvisionedError } from "@loominal/fabric";
import { LoominalError } from "@loominal/protocol";
import type { CliContext } from "../context.js";
import { LocalNats, type StartedServer } from "../local-nats.js";
import { requireNatsServer } from "../nats-binary.js";
import { type NatsProbe, probeNats } from "../probe.js";
import { projectConfig } from "../project-config.js";
import { describeProvision, provisionWithConfig } from "../provision.js";
import { preferredPort, printConnectHint, printStarted } from "./nats.js";
import { type UpOptions, upServices } from "./services.js";

/** `up`: NATS (and the project's streams and buckets), then Weft and a Runner unless `--nats-only`. */
export async function up(ctx: CliContext, opts: UpOptions, setExit: (code: number) => void): Promise<void> {
  const config = projectConfig(ctx);
  if (opts.natsOnly) {
    const nats = await ensureNats(ctx, config);
    printConnectHint(ctx, nats.url, nats.external ? config : undefined);
    return;
  }
  setExit(await upServices(ctx, config, opts, () => ensureNats(ctx, config)));
}

/**
 * Whether the user pointed Loominal at a particular server: NATS_URL, `natsUrl` in .loominal.json, or
 * credentials. Then a server that refuses us or lacks JetStream is theirs to fix, and starting a local
 * server instead would hide the problem behind a fabric they did not ask for.
 */
function serverChosen(config: LoominalConfig): boolean {
  const { nats } = config;
  return (
    config.natsUrlSource !== "default" ||
    nats.user !== undefined ||
    nats.token !== undefined ||
    nats.credsFile !== undefined
  );
}

/** The NATS that `up` settled on, and the local server it started for it, if it did. */
export interface UpNats {
  url: string;
  /** True when the server is one the user configured or already ran (credentials may apply). */
  external: boolean;
  started?: StartedServer;
  local: LocalNats;
}

async function ensureNats(ctx: CliContext, config: LoominalConfig): Promise<UpNats> {
  const local = new LocalNats(config.projectDir);
  const probe = await probeNats(config.nats);

  if (probe.kind === "ready") {
    const localPid = local.runningPid();
    const isLocal = localPid !== undefined && local.urlOf(localPid) === probe.url;
    ctx.out(
      `Using NATS at ${probe.url}: nats-server ${probe.version} with JetStream` +
        (isLocal ? ` (this project's local server, pid ${localPid}).` : "."),
    );
    await provisionOrExplain(ctx, config, probe.url);
    return { url: probe.url, external: true, local };
  }

  if (probe.kind !== "unreachable") {
    if (serverChosen(config)) throw notUsable(probe, config);
    // Nothing configured, and the default address is taken by a server we cannot use (often the
    // distribution's nats-server service, which runs without JetStream): run the project's own.
    ctx.out(
      `The NATS server at ${probe.url} (the default; NATS_URL is not set) cannot be used: ${describe(probe)}. ` +
        "Starting this project's own server on another port.",
    );
  } else {
    ctx.out(`No NATS at ${probe.url} (${probe.reason}); starting a local server.`);
  }
  const server = await local.start({
    bin: requireNatsServer(ctx.env),
    preferredPort: preferredPort(config.nats),
  });
  printStarted(ctx, local, server);
  await provisionOrExplain(ctx, config, server.url);
  return { url: server.url, external: false, ...(server.started ? { started: server } : {}), local };
}

/**
 * Creates the project's streams and buckets so agents (which need no stream administration) find them.
 * Credentials without that right (a project user of the generated config) can only verify them: what is
 * missing is reported with the command that provisions it, and `up` still succeeds.
 */
async function provisionOrExplain(ctx: CliContext, config: LoominalConfig, url: string): Promise<void> {
  try {
    const results = await provisionWithConfig(config, url);
    for (const line of describeProvision(config.projectId, results)) ctx.out(line);
  } catch (err) {
    if (err instanceof NotProvisionedError || err instanceof NatsPermissionError) {
      ctx.err(
        `loominal: ${err.message}. The agents of project ${config.projectId} cannot work until an operator runs 'loominal nats-provision --project ${config.projectId}' with the admin credentials.`,
      );
      return;
    }
    throw err;
  }
}

function describe(probe: Exclude<NatsProbe, { kind: "ready" | "unreachable" }>): string {
  switch (probe.kind) {
    case "refused":
      return `it refused the connection (${probe.reason})`;
    case "no-jetstream":
      return `nats-server ${probe.version} answers, but ${probe.reason}`;
    case "failed":
      return `the connection failed (${probe.reason})`;
  }
}

/** The error `up` stops with when the configured server answers but cannot be used. */
function notUsable(
  probe: Exclude<NatsProbe, { kind: "ready" | "unreachable" }>,
  config: LoominalConfig,
): LoominalError {
  const where =
    config.natsUrlSource === "env"
      ? "NATS_URL"
      : config.natsUrlSource === "file"
        ? "natsUrl in .loominal.json"
        : "the default URL";
  const tail = "No local server was started.";
  switch (probe.kind) {
    case "refused":
      return new LoominalError(
        "forbidden",
        `NATS at ${probe.url} (${where}) refused the connection: ${probe.reason}. Fix the credentials: ` +
          "NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, or user:password@ in NATS_URL " +
          `(percent-encode reserved characters). ${tail}`,
      );
    case "no-jetstream":
      return new LoominalError(
        "unsupported_server",
        `NATS at ${probe.url} (${where}, nats-server ${probe.version}) answers, but ${probe.reason}. ` +
          "Enable JetStream there (nats-server -js, or a jetstream block in its config and `jetstream: enabled` " +
          `for the account), or point ${where} at a server with JetStream, or unset it so that 'up' starts a ` +
          `local server. ${tail}`,
      );
    case "failed":
      return new LoominalError(
        "nats_unavailable",
        `NATS at ${probe.url} (${where}) answered, but the connection failed: ${probe.reason}. ` +
          `Check the URL scheme (tls:// needs a TLS server; NATS_TLS_CA for a private CA). ${tail}`,
      );
  }
}
