import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function registerNatsProvisionCommand(program: Command, ctx: CliContext): void {
  program
    .command("nats-provision")
    .description(
      "create (or verify) every stream and bucket of a project, with admin NATS credentials " +
        "(agents under the generated permissions may not create them; see docs/security.md)",
    )
    .option(
      "--project <projectId>",
      "the project to provision (default: this directory's project); repeat for more",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .action(async (opts: { project?: string[] }) =>
      (await import("../actions/nats-provision.js")).natsProvision(ctx, opts),
    );
}
