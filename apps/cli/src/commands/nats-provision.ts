import { ConfigError, projectIdProblem } from "@loominal/protocol";
import type { Command } from "commander";
import { type CliContext, projectConfig } from "../context.js";
import { describeProvision, provisionWithConfig } from "../provision.js";

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
    .action(async (opts: { project?: string[] }) => {
      const projects = opts.project ?? [undefined];
      for (const projectId of projects) {
        if (projectId !== undefined) {
          const problem = projectIdProblem(projectId);
          if (problem) throw new ConfigError(`--project ${JSON.stringify(projectId)}: ${problem}`);
        }
        const config = projectConfig(
          projectId === undefined ? ctx : { ...ctx, env: { ...ctx.env, LOOMINAL_PROJECT_ID: projectId } },
        );
        const results = await provisionWithConfig(config);
        for (const line of describeProvision(config.projectId, results)) ctx.out(line);
      }
    });
}
