import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { LoominalError } from "@loominal/protocol";
import { leaseConflictsFor, liveFileLeases } from "@loominal/warp";
import type { CliContext } from "../context.js";
import { projectConfig } from "../project-config.js";
import { quickConnect, sessionAgent } from "../session-agent.js";

const MARKER = "# loominal guard";
const HOOKS = ["pre-commit", "pre-push"] as const;
type GitHook = (typeof HOOKS)[number];

function git(cwd: string, args: string[], input?: string): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    ...(input !== undefined ? { input } : {}),
  }).trim();
}

/** The hook script: LOOMINAL_GUARD=off skips it; it runs this very CLI with this node. */
function hookScript(hook: GitHook): string {
  const bin = fileURLToPath(new URL("../bin.js", import.meta.url));
  return [
    "#!/bin/sh",
    `${MARKER} (${hook}): refuses changes to paths another live agent leased exclusively.`,
    "# Skip once with --no-verify, or always with LOOMINAL_GUARD=off.",
    '[ "$LOOMINAL_GUARD" = "off" ] && exit 0',
    `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} guard check --hook ${hook}`,
    "",
  ].join("\n");
}

/** Files a commit (staged) or a push (its commits not on the remote yet) changes, relative to the repository root. */
function changedFiles(root: string, hook: GitHook, stdin: string): string[] {
  if (hook === "pre-commit")
    return lines(git(root, ["diff", "--cached", "--name-only", "-z"]).replaceAll("\0", "\n"));
  const files = new Set<string>();
  for (const line of lines(stdin)) {
    const [, localSha, , remoteSha] = line.split(" ");
    if (!localSha || /^0+$/.test(localSha)) continue;
    const range =
      remoteSha && !/^0+$/.test(remoteSha) ? [`${remoteSha}..${localSha}`] : [localSha, "--not", "--remotes"];
    for (const commit of lines(git(root, ["rev-list", ...range])))
      for (const f of lines(
        git(root, ["diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit]),
      ))
        files.add(f);
  }
  return [...files];
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** `guard install`: the guard as this repository's pre-commit and pre-push hooks. */
export function guardInstall(ctx: CliContext, opts: { force?: boolean }): void {
  const root = gitRoot(ctx.cwd);
  const hooksDir = resolve(root, git(root, ["rev-parse", "--git-path", "hooks"]));
  mkdirSync(hooksDir, { recursive: true });
  for (const hook of HOOKS) {
    const path = join(hooksDir, hook);
    if (existsSync(path) && !readFileSync(path, "utf8").includes(MARKER) && !opts.force)
      throw new LoominalError(
        "already_exists",
        `${path} exists and is not the guard's; call '${ctx.commandName} guard check --hook ${hook}' from it, or pass --force to replace it`,
      );
    writeFileSync(path, hookScript(hook));
    chmodSync(path, 0o755);
    ctx.out(`installed ${path}`);
  }
}

/** `guard check`: exit 1 naming holder and reason when a change touches another agent's exclusive lease. */
export async function guardCheck(
  ctx: CliContext,
  opts: { hook: string },
  setExit: (code: number) => void,
): Promise<void> {
  if (ctx.env.LOOMINAL_GUARD === "off") return;
  if (!(HOOKS as readonly string[]).includes(opts.hook))
    throw new LoominalError("invalid_input", `--hook must be pre-commit or pre-push; got ${opts.hook}`);
  const hook = opts.hook as GitHook;
  const root = gitRoot(ctx.cwd);
  const stdin = hook === "pre-push" ? readFileSync(0, "utf8") : "";
  const config = projectConfig(ctx);
  const files = changedFiles(root, hook, stdin)
    .map((f) => relative(config.projectDir, join(root, f)).split(sep).join("/"))
    .filter((f) => f !== "" && !f.startsWith("..") && !isAbsolute(f));
  if (files.length === 0) return;
  const fabric = await quickConnect(config);
  if (!fabric) {
    ctx.err(
      `loominal guard: NATS unreachable at ${config.nats.servers.join(",")}; leases not checked, allowing.`,
    );
    return;
  }
  try {
    const me = sessionAgent(config);
    const leases = await liveFileLeases(fabric, config.projectId, config.hostname);
    const conflicts = leaseConflictsFor(leases, files, me.agentId);
    if (conflicts.length === 0) return;
    ctx.err(
      `loominal guard: this ${hook === "pre-commit" ? "commit" : "push"} touches files other agents leased exclusively:`,
    );
    for (const c of conflicts)
      ctx.err(
        `  ${c.path}: leased (${c.heldPath}) by ${c.handle} (${c.agentId}) until ${c.expiresAt}: ${c.reason}`,
      );
    ctx.err(
      "Coordinate with the holder (warp_messages_send_direct), or skip the check with --no-verify or LOOMINAL_GUARD=off.",
    );
    setExit(1);
  } catch (err) {
    ctx.err(
      `loominal guard: could not check leases (${err instanceof Error ? err.message : String(err)}); allowing.`,
    );
  } finally {
    await fabric.close();
  }
}

function gitRoot(cwd: string): string {
  try {
    return git(cwd, ["rev-parse", "--show-toplevel"]);
  } catch (cause) {
    throw new LoominalError("invalid_input", `${cwd} is not inside a git repository`, { cause });
  }
}
