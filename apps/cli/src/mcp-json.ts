import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { LoominalError } from "@loominal/protocol";
import { z } from "zod";
import type { McpServerEntry } from "./mcp-config.js";

/**
 * What `.mcp.json` must look like for a merge: an object whose `mcpServers`, when present, maps names to
 * objects. Everything else in the file (other keys, other servers, their fields) is kept as it is.
 */
const mcpJsonSchema = z.looseObject({
  mcpServers: z.record(z.string(), z.looseObject({})).optional(),
});

export type MergeOutcome = "added" | "unchanged" | "replaced";

export interface MergeResult {
  file: string;
  servers: Array<{ name: string; outcome: MergeOutcome }>;
  /** Servers in the file that are not Loominal's, kept as they were. */
  kept: string[];
}

/**
 * Merges `servers` into the `.mcp.json` at `file` (creating it when missing): a server absent there is
 * added, an identical one left alone, and one that differs is replaced only with `force` — otherwise
 * nothing is written and the error names each differing server. Other servers and keys are kept.
 */
export function mergeMcpJson(
  file: string,
  servers: Record<string, McpServerEntry>,
  options: { force?: boolean } = {},
): MergeResult {
  let doc: z.infer<typeof mcpJsonSchema> = {};
  let indent = 2;
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw new LoominalError(
        "invalid_config",
        `${file} is not valid JSON (${cause instanceof Error ? cause.message : String(cause)}); fix or move it, then run this again`,
      );
    }
    const parsed = mcpJsonSchema.safeParse(raw);
    if (!parsed.success) {
      throw new LoominalError(
        "invalid_config",
        `${file} is not an MCP config: ${z.prettifyError(parsed.error).replaceAll("\n", " ")}. It must be an object ` +
          `whose "mcpServers" maps server names to objects; fix or move it, then run this again`,
      );
    }
    doc = parsed.data;
    indent = /^\{\n( +)"/.exec(text)?.[1]?.length ?? 2;
  }
  const existing = doc.mcpServers ?? {};
  const result: MergeResult = {
    file,
    servers: [],
    kept: Object.keys(existing).filter((name) => !(name in servers)),
  };
  const differing: string[] = [];
  for (const [name, entry] of Object.entries(servers)) {
    const current = existing[name];
    if (current === undefined) result.servers.push({ name, outcome: "added" });
    else if (isDeepStrictEqual(current, entry)) result.servers.push({ name, outcome: "unchanged" });
    else {
      differing.push(name);
      result.servers.push({ name, outcome: "replaced" });
    }
  }
  if (differing.length > 0 && !options.force) {
    throw new LoominalError(
      "conflict",
      `${file} already has ${differing.map((n) => `"${n}"`).join(", ")} with a different command, arguments or ` +
        "environment; nothing was written. Compare with the output of 'loominal mcp-config', then run " +
        "'loominal mcp-config --write --force' to replace them",
      { details: { servers: differing } },
    );
  }
  if (result.servers.every((s) => s.outcome === "unchanged") && existsSync(file)) return result;
  const next = { ...doc, mcpServers: { ...existing, ...servers } };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(next, null, indent)}\n`);
  renameSync(tmp, file);
  return result;
}

/**
 * The `claude mcp add` command lines that register the same servers. The name comes before `-e`: the
 * option takes several values and would otherwise read the name as one; `--` ends the options, so the
 * server's own arguments are never read by `claude`.
 */
export function claudeAddCommands(
  servers: Record<string, McpServerEntry>,
  scope: "local" | "project" | "user",
): string[] {
  return Object.entries(servers).map(([name, entry]) => {
    const env = Object.entries(entry.env).map(([k, v]) => `-e ${shellQuote(`${k}=${v}`)}`);
    return [
      "claude mcp add --transport stdio --scope",
      scope,
      shellQuote(name),
      ...env,
      "--",
      shellQuote(entry.command),
      ...entry.args.map(shellQuote),
    ].join(" ");
  });
}

/** Quotes a word for POSIX shells when it holds anything but safe characters. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
