import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { cliVersion } from "../version.js";

export function registerVersionCommand(program: Command, ctx: CliContext): void {
  program
    .command("version")
    .description("print the versions of loominal, node and nats-server")
    .option("--json", "print the versions as JSON")
    .action(async (opts: { json?: boolean }) => {
      const { findNatsServer, natsServerVersionOf } = await import("../nats-binary.js");
      const bin = findNatsServer(ctx.env);
      const natsServer = bin === undefined ? undefined : natsServerVersionOf(bin);
      if (opts.json) {
        ctx.out(
          JSON.stringify(
            {
              loominal: cliVersion(),
              node: process.versions.node,
              natsServer: natsServer ?? null,
              natsServerBin: bin ?? null,
            },
            null,
            2,
          ),
        );
        return;
      }
      ctx.out(`loominal     ${cliVersion()}`);
      ctx.out(`node         ${process.versions.node}`);
      ctx.out(
        `nats-server  ${
          bin === undefined
            ? "not found (apt-get install nats-server, or set NATS_SERVER_BIN)"
            : `${natsServer ?? "unknown"} (${bin})`
        }`,
      );
    });
}
