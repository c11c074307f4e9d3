import type { Logger } from "@loominal/fabric";
import { LoominalError, type TargetRecord } from "@loominal/protocol";
import { Octokit } from "@octokit/rest";
import { z } from "zod";
import {
  envNameSchema,
  errorText,
  parseConfig,
  redact,
  type SecretSource,
  secretFrom,
  withTimeout,
} from "./common.js";
import type { HealthResult, Mechanism, MechanismHandle, RemoteStatus, StartRequest } from "./types.js";

const slug = z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, _, . and -");

/**
 * `github-actions` target config: a `workflow_dispatch` workflow that runs the agent. The workflow must
 * take the spin-up id as the input `spinUpIdInput` and show it in its `run-name`, which is how Weft finds
 * the run it dispatched (never "the latest run"):
 *
 *     on: { workflow_dispatch: { inputs: { loominal_spinup_id: { required: true } } } }
 *     run-name: loominal ${{ inputs.loominal_spinup_id }}
 */
export const githubActionsConfigSchema = z.strictObject({
  owner: slug,
  repo: slug,
  /** The workflow file name (`agent.yml`) or its numeric id. */
  workflow: z.union([z.string().min(1), z.int().positive()]),
  ref: z.string().min(1).default("main"),
  /** Env variable of Weft's process holding the token (needs actions: write on the repository). */
  tokenEnv: envNameSchema,
  /** The API root (GitHub Enterprise Server: `https://ghe.example.com/api/v3`). */
  apiUrl: z.url({ protocol: /^https?$/ }).default("https://api.github.com"),
  spinUpIdInput: z.string().min(1).default("loominal_spinup_id"),
  /** Further constant inputs of the workflow. */
  inputs: z.record(z.string(), z.string()).default({}),
  /** Inputs taken from the agent env, `input: ENV_NAME` (e.g. `nats_url: NATS_URL`). */
  envInputs: z.record(z.string(), envNameSchema).default({}),
  /** How long start looks for the dispatched run before leaving it to later status/stop calls, in ms. */
  findRunTimeoutMs: z.int().min(0).max(600_000).default(30_000),
  pollMs: z.int().min(50).max(60_000).default(2_000),
  /** Each API call, in ms. */
  timeoutMs: z.int().min(100).max(300_000).default(15_000),
});
export type GithubActionsConfig = z.infer<typeof githubActionsConfigSchema>;

const handleSchema = z.object({
  spinUpId: z.string(),
  dispatchedAt: z.string(),
  runId: z.number().optional(),
  runUrl: z.string().optional(),
  config: githubActionsConfigSchema,
});
type Handle = z.infer<typeof handleSchema>;

/** Starts agents by dispatching a GitHub Actions workflow. */
export class GithubActionsMechanism implements Mechanism {
  readonly name = "github-actions" as const;
  #logger: Logger;
  #secrets: SecretSource;

  constructor(options: { logger: Logger; secrets?: SecretSource }) {
    this.#logger = options.logger;
    this.#secrets = options.secrets ?? process.env;
  }

  validateConfig(config: unknown): Record<string, unknown> {
    return parseConfig("github-actions", githubActionsConfigSchema, config);
  }

  #client(config: GithubActionsConfig): { octokit: Octokit; token: string } {
    const token = secretFrom(this.#secrets, config.tokenEnv, "GitHub token");
    const octokit = new Octokit({
      auth: token,
      baseUrl: config.apiUrl.replace(/\/+$/, ""),
      userAgent: "loominal-weft",
      log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    return { octokit, token };
  }

  async #call<T>(config: GithubActionsConfig, token: string, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(fn(), config.timeoutMs, what);
    } catch (err) {
      if (err instanceof LoominalError) throw err;
      const status = (err as { status?: number }).status;
      const message = redact(errorText(err), [token]).slice(0, 300);
      const hint =
        status === 401
          ? `; the token in ${config.tokenEnv} was rejected`
          : status === 403
            ? `; the token in ${config.tokenEnv} lacks actions: write on ${config.owner}/${config.repo}`
            : status === 404
              ? `; check owner, repo and workflow (${config.owner}/${config.repo}, ${config.workflow}) and that the token can see them`
              : status === 422
                ? `; check that the workflow has workflow_dispatch with the input ${config.spinUpIdInput}, and config.ref`
                : "";
      throw new LoominalError(
        status === 401 || status === 403
          ? "forbidden"
          : status === 404
            ? "not_found"
            : status === 409
              ? "conflict"
              : "internal",
        `${what}: ${status ? `HTTP ${status} ` : ""}${message}${hint}`,
      );
    }
  }

  /** The run of this spin-up: a workflow_dispatch run created since the dispatch whose title names it. */
  async #findRun(h: Handle): Promise<{ id: number; html_url: string } | undefined> {
    if (h.runId !== undefined) return { id: h.runId, html_url: h.runUrl ?? "" };
    const { config } = h;
    const { octokit, token } = this.#client(config);
    // Runs are stamped by GitHub's clock: look a minute before our dispatch time.
    const since = new Date(Date.parse(h.dispatchedAt) - 60_000).toISOString();
    const page = await this.#call(config, token, "listing workflow runs", () =>
      octokit.rest.actions.listWorkflowRuns({
        owner: config.owner,
        repo: config.repo,
        workflow_id: config.workflow,
        event: "workflow_dispatch",
        created: `>=${since}`,
        per_page: 100,
      }),
    );
    const run = page.data.workflow_runs.find((r) =>
      [r.name, r.display_title].some((t) => typeof t === "string" && t.split(/\s+/).includes(h.spinUpId)),
    );
    return run ? { id: run.id, html_url: run.html_url } : undefined;
  }

  async start(request: StartRequest): Promise<MechanismHandle> {
    const config = githubActionsConfigSchema.parse(request.target.config);
    const { octokit, token } = this.#client(config);
    const inputs: Record<string, string> = { ...config.inputs, [config.spinUpIdInput]: request.spinUpId };
    for (const [input, env] of Object.entries(config.envInputs)) {
      const v = request.env[env];
      if (v !== undefined) inputs[input] = v;
    }
    const dispatchedAt = new Date().toISOString();
    await this.#call(config, token, `dispatching ${config.owner}/${config.repo} ${config.workflow}`, () =>
      octokit.rest.actions.createWorkflowDispatch({
        owner: config.owner,
        repo: config.repo,
        workflow_id: config.workflow,
        ref: config.ref,
        inputs,
      }),
    );
    let handle: Handle = { spinUpId: request.spinUpId, dispatchedAt, config };
    const until = Date.now() + config.findRunTimeoutMs;
    for (;;) {
      const run = await this.#findRun(handle);
      if (run) {
        handle = { ...handle, runId: run.id, runUrl: run.html_url };
        break;
      }
      if (Date.now() + config.pollMs > until) break;
      await new Promise((r) => setTimeout(r, config.pollMs));
    }
    this.#logger.info(
      { spinUpId: request.spinUpId, repo: `${config.owner}/${config.repo}`, runId: handle.runId },
      handle.runId ? "dispatched a workflow run" : "dispatched a workflow; its run is not listed yet",
    );
    return handle;
  }

  async stop(handle: MechanismHandle, _options: { graceMs: number }): Promise<void> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return;
    const run = await this.#findRun(h.data);
    if (!run) return;
    const { config } = h.data;
    const { octokit, token } = this.#client(config);
    try {
      await this.#call(config, token, `cancelling run ${run.id}`, () =>
        octokit.rest.actions.cancelWorkflowRun({ owner: config.owner, repo: config.repo, run_id: run.id }),
      );
    } catch (err) {
      // 409: the run already finished, which is what stop wants.
      if (err instanceof LoominalError && err.code === "conflict") return;
      throw err;
    }
  }

  async status(handle: MechanismHandle): Promise<RemoteStatus> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return { state: "unknown", message: "not a github-actions spin-up handle" };
    const run = await this.#findRun(h.data);
    if (!run) return { state: "pending", message: "the dispatched run is not listed yet" };
    const { config } = h.data;
    const { octokit, token } = this.#client(config);
    const { data } = await this.#call(config, token, `reading run ${run.id}`, () =>
      octokit.rest.actions.getWorkflowRun({ owner: config.owner, repo: config.repo, run_id: run.id }),
    );
    const message = `run ${data.id} is ${data.status}${data.conclusion ? ` (${data.conclusion})` : ""}`;
    if (data.status === "completed")
      return { state: data.conclusion === "success" ? "succeeded" : "failed", message };
    if (data.status === "in_progress") return { state: "running", message };
    return { state: "pending", message };
  }

  async test(target: TargetRecord): Promise<HealthResult> {
    try {
      const config = parseConfig("github-actions", githubActionsConfigSchema, target.config);
      const { octokit, token } = this.#client(config);
      const { data } = await this.#call(config, token, "reading the workflow", () =>
        octokit.rest.actions.getWorkflow({
          owner: config.owner,
          repo: config.repo,
          workflow_id: config.workflow,
        }),
      );
      return data.state === "active"
        ? { ok: true, message: `workflow ${data.name} is readable and active` }
        : { ok: false, message: `workflow ${data.name} is ${data.state}; enable it in the repository` };
    } catch (err) {
      return { ok: false, message: errorText(err) };
    }
  }
}
