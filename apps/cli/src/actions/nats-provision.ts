import { ConfigError, projectIdProblem } from "@loominal/protocol";
import type { CliContext } from "../context.js";
import { projectConfig } from "../project-config.js";
import { describeProvision, provisionWithConfig } from "../provision.js";

/** `nats-provision`: creates (or verifies) every stream and bucket of the projects, with admin credentials. */
export async function natsProvision(ctx: CliContext, opts: { project?: string[] }): Promise<void> {
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
}
