import type { Command } from "commander";
import type { NatsConfigOptions } from "../actions/nats-config.js";
import type { CliContext } from "../context.js";

export function registerNatsConfigCommand(program: Command, ctx: CliContext): void {
  program
    .command("nats-config")
    .description(
      "write a nats-server config whose users are each confined to one project (see docs/security.md)",
    )
    .requiredOption(
      "--user <name:projectId[:userId]>",
      "a NATS user and the project it may use; repeat for more users",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .requiredOption(
      "--out <file>",
      "where to write the config (created with mode 0600; it holds the passwords)",
    )
    .option("--store-dir <dir>", "the JetStream store directory of the server", "/var/lib/nats-server")
    .option("--listen <host:port>", "the client listen address")
    .option(
      "--k8s",
      "write Kubernetes Secrets for deploy/k8s instead of a server config: the accounts block its nats.conf includes, the services' user and one Secret per project user (needs --admin)",
    )
    .option("--namespace <ns>", "the namespace of those Secrets", "loominal")
    .option(
      "--admin <name>",
      "also write an admin user with every right, for 'loominal nats-provision' and services (keep its password to operators)",
    )
    .action(async (opts: NatsConfigOptions) =>
      (await import("../actions/nats-config.js")).natsConfig(ctx, opts),
    );
}
