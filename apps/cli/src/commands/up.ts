import { redactUrl } from "@loominal/fabric";
import type { Command } from "commander";
import { type CliContext, projectConfig } from "../context.js";
import { LocalNats } from "../local-nats.js";
import { requireNatsServer } from "../nats-binary.js";
import { probeNats } from "../probe.js";
import { preferredPort, printConnectHint, printStarted } from "./nats.js";

export function registerUpCommand(program: Command, ctx: CliContext): void {
  program
    .command("up")
    .description(
      "one command to a running local fabric: use NATS_URL if it answers with JetStream, " +
        "else start a local nats-server under .loominal/",
    )
    .action(async () => {
      await up(ctx);
    });
}

async function up(ctx: CliContext): Promise<void> {
  const config = projectConfig(ctx);
  const local = new LocalNats(config.projectDir);
  const probe = await probeNats(config.nats);

  if (probe.reachable && probe.jetstream) {
    const localPid = local.runningPid();
    const isLocal = localPid !== undefined && local.urlOf(localPid) === probe.url;
    ctx.out(
      `Using NATS at ${probe.url}: nats-server ${probe.version} with JetStream` +
        (isLocal ? ` (this project's local server, pid ${localPid}).` : "."),
    );
    printConnectHint(ctx, probe.url);
    return;
  }

  ctx.out(
    probe.reachable
      ? `NATS at ${probe.url} answers (nats-server ${probe.version}) but has no JetStream; starting a local server.`
      : `No NATS at ${probe.url} (${probe.reason}); starting a local server.`,
  );
  const server = await local.start({
    bin: requireNatsServer(ctx.env),
    preferredPort: preferredPort(config.nats),
  });
  printStarted(ctx, local, server);
  printConnectHint(ctx, redactUrl(server.url));
}
