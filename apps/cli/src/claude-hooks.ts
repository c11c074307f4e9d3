import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LoominalError } from "@loominal/protocol";
import { HOOK_EVENTS, type HookEvent } from "@loominal/warp/hook-client";

/** Tools whose input names a file the agent just changed. */
export const POST_TOOL_USE_MATCHER = "Edit|Write|MultiEdit|NotebookEdit";
/** Seconds Claude Code gives the hook (it finishes far sooner, and exits 0 when NATS is down). */
const HOOK_TIMEOUT_S = 10;

interface HookCommand {
  type: string;
  command?: string;
  timeout?: number;
  [key: string]: unknown;
}
interface HookGroup {
  matcher?: string;
  hooks?: HookCommand[];
  [key: string]: unknown;
}

/** bash by absolute path, found on PATH; undefined without one. */
export function findBash(env: Record<string, string | undefined> = process.env): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "bash");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The command line Claude Code runs for one event, by absolute paths:
 * - `"<bash>" "<cli>/dist/hook.sh" <event> "<node>"` where bash is found (the shell hook: it asks the Warp
 *   server of the session with bash builtins and starts this node only when that server does not answer);
 * - else this node and the CLI's hook entry, `"<node>" "<cli>/dist/hook.cjs" <event>`;
 * - `bin.js hook <event>` when the CLI was built without that entry.
 */
export function hookCommand(event: HookEvent, bash: string | undefined = findBash()): string {
  const node = JSON.stringify(process.execPath);
  const entry = fileURLToPath(new URL("./hook.cjs", import.meta.url));
  const shell = fileURLToPath(new URL("./hook.sh", import.meta.url));
  if (existsSync(entry)) {
    if (bash !== undefined && existsSync(shell))
      return `${JSON.stringify(bash)} ${JSON.stringify(shell)} ${event} ${node}`;
    return `${node} ${JSON.stringify(entry)} ${event}`;
  }
  const bin = fileURLToPath(new URL("./bin.js", import.meta.url));
  return `${node} ${JSON.stringify(bin)} hook ${event}`;
}

/** A Loominal hook of this event, as written now (`hook.sh <event> <node>`) or before (`hook.cjs <event>`, `bin.js hook <event>`). */
const ours = (event: HookEvent) => (h: HookCommand) =>
  typeof h.command === "string" &&
  ((h.command.endsWith(` hook ${event}`) && h.command.includes("bin.js")) ||
    (h.command.endsWith(`hook.cjs" ${event}`) && h.command.includes("hook.cjs")) ||
    h.command.includes(`hook.sh" ${event} `));

/**
 * Merges Loominal's hooks into a Claude Code settings file (`.claude/settings.json`): one command per event
 * in HOOK_EVENTS, every other key and every hook of the user's kept as it was; an earlier Loominal hook of
 * the same event is updated in place, so running it again changes nothing. Returns one line per event saying
 * what happened.
 */
export function mergeClaudeHooks(path: string, bash: string | undefined = findBash()): string[] {
  let settings: Record<string, unknown> = {};
  if (existsSync(path)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not a JSON object");
      settings = parsed as Record<string, unknown>;
    } catch (cause) {
      throw new LoominalError(
        "invalid_config",
        `${path} is not a JSON object; fix or move it, then run again`,
        {
          cause,
        },
      );
    }
  }
  const hooks = (settings.hooks ?? {}) as Record<string, unknown>;
  if (typeof hooks !== "object" || Array.isArray(hooks))
    throw new LoominalError("invalid_config", `"hooks" in ${path} is not an object; fix it, then run again`);
  const changes: string[] = [];
  let changed = false;
  for (const event of HOOK_EVENTS) {
    const groups = (Array.isArray(hooks[event]) ? hooks[event] : []) as HookGroup[];
    const command = hookCommand(event, bash);
    const wanted: HookCommand = { type: "command", command, timeout: HOOK_TIMEOUT_S };
    const existing = groups.find((g) => Array.isArray(g.hooks) && g.hooks.some(ours(event)));
    if (existing?.hooks) {
      const i = existing.hooks.findIndex(ours(event));
      const current = existing.hooks[i];
      if (current && current.command === command && current.timeout === HOOK_TIMEOUT_S) {
        changes.push(`${event}: unchanged`);
        continue;
      }
      existing.hooks[i] = { ...current, ...wanted };
      changes.push(`${event}: updated the loominal hook`);
    } else {
      groups.push({
        ...(event === "PostToolUse" ? { matcher: POST_TOOL_USE_MATCHER } : {}),
        hooks: [wanted],
      });
      changes.push(`${event}: added the loominal hook`);
    }
    hooks[event] = groups;
    changed = true;
  }
  if (changed) {
    settings.hooks = hooks;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(settings, null, 2)}\n`);
  }
  return changes;
}
