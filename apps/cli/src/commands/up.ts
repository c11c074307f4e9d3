import type { Command } from "commander";
import type { UpOptions } from "../actions/services.js";
import type { CliContext } from "../context.js";

export function registerUpCommand(program: Command, ctx: CliContext, setExit: (code: number) => void): void {
  program
    .command("up")
    .description(
      "one command to a running local fabric: NATS (NATS_URL if it answers with JetStream, else a local " +
        "nats-server under .loominal/), then Weft and a Runner; Ctrl-C stops what it started",
    )
    .option("--detach", "leave everything running and return; 'down' stops it, 'status' checks it")
    .option("--nats-only", "only make sure NATS answers with JetStream and the project is provisioned")
    .option(
      "--weft-port <port>",
      "Weft's HTTP port (default: WEFT_PORT, else 3000 when free, else a free one)",
    )
    .option(
      "--runner-port <port>",
      "the Runner's HTTP port (default: RUNNER_PORT, else 3100 when free, else a free one)",
    )
    .option("--show-token", "also print the API token itself (by default only the file holding it)")
    .option("--timeout <ms>", "how long Weft and the Runner may take to become healthy", "60000")
    .action(async (opts: UpOptions) => (await import("../actions/up.js")).up(ctx, opts, setExit));
}
