import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { LoominalError } from "@loominal/protocol";
import type { CliContext } from "../context.js";
import { projectConfig } from "../project-config.js";
import { readStackState, stackPaths } from "../stack.js";

/**
 * Where Weft is and how to authenticate: WEFT_URL, else the Weft that `loominal up` started for this
 * project, else http://127.0.0.1:3000; WEFT_TOKEN, else the token file Weft (or `up`) wrote.
 */
export function weftClient(ctx: CliContext) {
  const started = upWeft(ctx);
  const base = (ctx.env.WEFT_URL?.trim() || started?.url || "http://127.0.0.1:3000").replace(/\/+$/, "");
  const tokenFile = started?.tokenFile ?? join(ctx.cwd, ".loominal", "weft-token");
  const token =
    ctx.env.WEFT_TOKEN?.trim() ||
    (existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : undefined);
  if (!token)
    throw new LoominalError(
      "invalid_config",
      `no Weft token: set WEFT_TOKEN, or run where Weft wrote ${join(".loominal", "weft-token")}`,
    );
  return async (
    method: string,
    path: string,
    query: Record<string, string | undefined> = {},
    body?: unknown,
  ) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") qs.set(k, v);
    const url = `${base}${path}${qs.size > 0 ? `?${qs}` : ""}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (cause) {
      throw new LoominalError(
        "nats_unavailable",
        `cannot reach Weft at ${base} (WEFT_URL): ${String(cause)}`,
        {
          cause,
        },
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } })?.error;
      throw new LoominalError(
        res.status === 400 ? "invalid_input" : "internal",
        `Weft answered ${res.status}: ${e?.message ?? text.slice(0, 500)}`,
      );
    }
    return json as Record<string, unknown>;
  };
}

/** The Weft `up` recorded for this project, if any (a broken configuration or record is ignored here). */
function upWeft(ctx: CliContext): { url: string; tokenFile: string; projectId: string } | undefined {
  try {
    const state = readStackState(stackPaths(projectConfig(ctx).projectDir));
    return state?.weft
      ? { url: state.weft.url, tokenFile: state.tokenFile, projectId: state.projectId }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The project a command is for: --project, else LOOMINAL_PROJECT_ID, else this directory's when the Weft
 * it talks to is the one `up` started here (it runs with an admin token, so its project is this directory's).
 */
export function projectFor(ctx: CliContext, o: { project?: string }): string | undefined {
  if (o.project !== undefined) return o.project;
  if (ctx.env.LOOMINAL_PROJECT_ID !== undefined) return ctx.env.LOOMINAL_PROJECT_ID;
  const started = upWeft(ctx);
  const url = ctx.env.WEFT_URL?.trim().replace(/\/+$/, "");
  return started && (!url || url === started.url) ? started.projectId : undefined;
}
