import type { Command } from "commander";
import type { CliContext } from "../context.js";

/** A plain text table of chosen columns. */
export function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (rows.length === 0) return "(none)";
  const cell = (v: unknown) =>
    v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  const data = rows.map((r) =>
    columns.map((c) => cell(c.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], r))),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...data.map((d) => (d[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(columns), ...data.map(line)].join("\n");
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `loominal work|targets|agents|stats`: Weft's REST API from the terminal. */
export function registerWeftCommands(program: Command, ctx: CliContext): void {
  const print = (json: boolean, value: unknown, human: () => string) =>
    ctx.out(json ? JSON.stringify(value, null, 2) : human());
  const withProject = (cmd: Command) =>
    cmd
      .option(
        "--project <id>",
        "project id (default: LOOMINAL_PROJECT_ID, this directory's with the Weft 'up' started, or the token's only project)",
      )
      .option("--json", "print JSON");
  // The REST client and the project of a command; both read the configuration, so they load with it.
  const api = async (o: { project?: string }) => {
    const { projectFor, weftClient } = await import("../actions/weft.js");
    const call = weftClient(ctx);
    return { call, projectId: projectFor(ctx, o) };
  };

  const work = program.command("work").description("work items through Weft (WEFT_URL, WEFT_TOKEN)");
  withProject(
    work
      .command("submit")
      .description("submit a work item")
      .requiredOption("--capability <name>", "capability a claimer needs")
      .requiredOption("--description <text>", "what needs doing")
      .option("--boundary <name>", "boundary (default: default)")
      .option("--priority <n>", "1–10")
      .option("--task-id <id>", "your id for the task")
      .option("--required-agent-type <type>", "only this agent type may claim it"),
  ).action(async (o) => {
    const { call, projectId } = await api(o);
    const r = await call(
      "POST",
      "/api/work",
      { projectId },
      {
        capability: o.capability,
        description: o.description,
        ...(o.boundary ? { boundary: o.boundary } : {}),
        ...(o.priority ? { priority: Number(o.priority) } : {}),
        ...(o.taskId ? { taskId: o.taskId } : {}),
        ...(o.requiredAgentType ? { requiredAgentType: o.requiredAgentType } : {}),
      },
    );
    print(
      o.json,
      r,
      () =>
        `${r.workId} ${r.status}${r.spinUp ? ` (spin-up ${(r.spinUp as { spinUpId: string }).spinUpId})` : ""}`,
    );
  });
  withProject(
    work
      .command("ls")
      .description("list work items, newest first")
      .option("--status <status>", "pending, claimed, completed, dead, cancelled, discarded")
      .option("--capability <name>")
      .option("--boundary <name>")
      .option("--limit <n>"),
  ).action(async (o) => {
    const { call, projectId } = await api(o);
    const r = await call("GET", "/api/work", {
      projectId,
      status: o.status,
      capability: o.capability,
      boundary: o.boundary,
      limit: o.limit,
    });
    print(o.json, r, () =>
      table(r.workItems as Array<Record<string, unknown>>, [
        "workId",
        "status",
        "capability",
        "boundary",
        "priority",
        "claimedBy",
        "description",
      ]),
    );
  });
  withProject(work.command("get <workId>").description("one work item")).action(async (workId: string, o) => {
    const { call, projectId } = await api(o);
    const r = await call("GET", `/api/work/${encodeURIComponent(workId)}`, {
      projectId,
    });
    print(o.json, r, () => JSON.stringify(r, null, 2));
  });
  withProject(
    work.command("cancel <workId>").description("cancel a pending or claimed item").option("--reason <text>"),
  ).action(async (workId: string, o) => {
    const { call, projectId } = await api(o);
    const r = await call(
      "POST",
      `/api/work/${encodeURIComponent(workId)}/cancel`,
      { projectId },
      o.reason ? { reason: o.reason } : {},
    );
    print(o.json, r, () => `${r.workId} ${r.status}`);
  });

  const targets = program.command("targets").description("spin-up targets of Weft");
  withProject(
    targets
      .command("add <name>")
      .description("register a target (admin token)")
      .requiredOption("--agent-type <type>", "agent type it starts, e.g. claude-code")
      .requiredOption("--capability <name>", "capability (repeatable)", collect)
      .option("--boundary <name>", "boundary it serves (repeatable; default all)", collect)
      .option("--mechanism <name>", "local (default), ssh, kubernetes, github-actions, webhook", "local")
      .option("--command <path>", "local: the program to run")
      .option("--arg <arg>", "local: an argument (repeatable)", collect)
      .option("--config <json>", "the mechanism's config as JSON (instead of --command/--arg)")
      .option("--max-concurrent <n>")
      .option("--idle-timeout-ms <ms>")
      .option("--timeout-ms <ms>"),
  ).action(async (name: string, o) => {
    const config = o.config
      ? (JSON.parse(o.config) as unknown)
      : { command: o.command, ...(o.arg ? { args: o.arg } : {}) };
    const { call, projectId } = await api(o);
    const r = await call(
      "POST",
      "/api/targets",
      { projectId },
      {
        name,
        mechanism: o.mechanism,
        agentType: o.agentType,
        capabilities: o.capability,
        ...(o.boundary ? { boundaries: o.boundary } : {}),
        config,
        ...(o.maxConcurrent ? { maxConcurrent: Number(o.maxConcurrent) } : {}),
        ...(o.idleTimeoutMs ? { idleTimeoutMs: Number(o.idleTimeoutMs) } : {}),
        ...(o.timeoutMs ? { timeoutMs: Number(o.timeoutMs) } : {}),
      },
    );
    print(o.json, r, () => `${r.targetId} ${r.name}`);
  });
  withProject(targets.command("ls").description("list targets")).action(async (o) => {
    const { call, projectId } = await api(o);
    const r = await call("GET", "/api/targets", { projectId });
    print(o.json, r, () =>
      table(r.targets as Array<Record<string, unknown>>, [
        "targetId",
        "name",
        "mechanism",
        "agentType",
        "capabilities",
        "enabled",
        "health.status",
        "useCount",
      ]),
    );
  });
  const byTarget = (verb: string, method: string, suffix: string, description: string) =>
    withProject(targets.command(`${verb} <target>`).description(description)).action(
      async (target: string, o) => {
        const { call, projectId } = await api(o);
        const r = await call(
          method,
          `/api/targets/${encodeURIComponent(target)}${suffix}`,
          { projectId },
          method === "POST" ? {} : undefined,
        );
        print(o.json, r, () => JSON.stringify(r, null, 2));
      },
    );
  byTarget("get", "GET", "", "one target (id or name)");
  byTarget("rm", "DELETE", "", "delete a target (admin token)");
  byTarget("test", "POST", "/test", "run the target's health check");
  byTarget("spin-up", "POST", "/spin-up", "start an agent on it now (admin token)");
  byTarget("enable", "POST", "/enable", "enable it (admin token)");
  byTarget("disable", "POST", "/disable", "disable it (admin token)");

  const agents = program.command("agents").description("agents Weft sees");
  withProject(
    agents
      .command("ls")
      .description("list agents")
      .option("--status <status>", "idle, busy, offline, or online (idle and busy)"),
  ).action(async (o) => {
    const { call, projectId } = await api(o);
    const r = await call("GET", "/api/agents", { projectId, status: o.status });
    print(o.json, r, () =>
      table(r.agents as Array<Record<string, unknown>>, [
        "agentId",
        "handle",
        "agentType",
        "status",
        "capabilities",
        "currentTaskCount",
        "spinUpId",
      ]),
    );
  });
  withProject(
    agents
      .command("shutdown <agentId>")
      .description("ask an agent to shut down")
      .option("--now", "hand items back instead of finishing them"),
  ).action(async (agentId: string, o) => {
    const { call, projectId } = await api(o);
    const r = await call(
      "POST",
      `/api/agents/${encodeURIComponent(agentId)}/shutdown`,
      { projectId },
      { graceful: !o.now },
    );
    print(o.json, r, () => String(r.message));
  });

  withProject(
    program
      .command("stats")
      .description("Weft's counts for a project (or every project with an admin token)"),
  ).action(async (o) => {
    const { call, projectId } = await api(o);
    const r = await call("GET", "/api/stats", { projectId });
    print(o.json, r, () => JSON.stringify(r, null, 2));
  });
}
