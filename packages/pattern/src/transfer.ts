import { constants, existsSync, lstatSync, mkdirSync, realpathSync, type Stats, statSync } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import {
  LoominalError,
  type MemoryExport,
  type MemoryRecord,
  memoryExportSchema,
  memoryPairProblem,
  randomId,
} from "@loominal/protocol";
import type { z } from "zod";
import { InvalidMemoryInputError, PathOutsideProjectError, SymlinkRefusedError } from "./errors.js";
import { exportInputSchema, importInputSchema, parseInput } from "./inputs.js";
import type { ImportSummary, MemoryStore } from "./store.js";

/** Largest export file `importMemories` reads. */
export const IMPORT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * File names export never writes, in any directory and in any letter case: they configure the
 * project or its agents. Any other existing file is protected by the rule that `overwrite` replaces
 * only an earlier Pattern export.
 */
export const EXPORT_PROTECTED_NAMES: readonly string[] = [".mcp.json", ".loominal.json", "package.json"];

const EXPORT_FORMAT = "loominal-pattern-export";

/** True when `path` is strictly below `root` (compared by path segments, so `..notes.json` is inside). */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  if (rel === "" || isAbsolute(rel)) return false;
  return rel.split(sep)[0] !== "..";
}

function atOrInside(root: string, path: string): boolean {
  return path === root || inside(root, path);
}

function requireJsonName(path: string): void {
  if (!path.toLowerCase().endsWith(".json")) {
    throw new InvalidMemoryInputError(`path ${path} must end in .json (export files are JSON)`);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

function realRoot(projectDir: string): string {
  try {
    return realpathSync(projectDir);
  } catch (cause) {
    throw new InvalidMemoryInputError(`the project directory ${projectDir} does not exist`, { cause });
  }
}

/**
 * Checks each directory between the project directory and `abs` that exists: a symbolic link must
 * lead to an existing directory inside the project, anything else must be a directory. With `create`,
 * missing directories are made one at a time (never through a link that was not checked).
 */
function walkParents(root: string, real: string, abs: string, requested: string, create: boolean): void {
  const parts = relative(root, dirname(abs)).split(sep).filter(Boolean);
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    const shown = relative(root, dir).split(sep).join("/");
    let st = lstatOrUndefined(dir);
    if (!st) {
      if (!create) return;
      try {
        mkdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      st = lstatSync(dir);
    }
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(dir);
      } catch {
        throw new InvalidMemoryInputError(
          `${shown} is a symbolic link whose target does not exist; choose another path for ${requested}`,
        );
      }
      if (!atOrInside(real, target)) throw new PathOutsideProjectError(requested, root);
      st = statSync(target);
    }
    if (!st.isDirectory()) {
      throw new InvalidMemoryInputError(`${shown} exists and is not a directory; choose another path`);
    }
  }
}

/**
 * Resolves a path for writing inside the project directory and checks it without writing anything.
 * Relative paths are taken from the project directory. Refused: paths outside it (`..`, absolute
 * paths elsewhere, directory links leading out: `forbidden`), names other than `*.json`, the names in
 * EXPORT_PROTECTED_NAMES, a directory link whose target is gone, and a final path that is a symbolic
 * link (export never writes through a link).
 */
export function exportPathInside(projectDir: string, path: string): string {
  requireJsonName(path);
  const root = resolve(projectDir);
  const abs = resolve(root, path);
  if (!inside(root, abs)) throw new PathOutsideProjectError(path, projectDir);
  // Dot-directories (.git, .claude, .vscode, ...) hold tools' configuration and hooks: never written,
  // except Loominal's own `.loominal/`.
  const dotDir = relative(root, dirname(abs))
    .split(sep)
    .find((seg) => seg.startsWith(".") && seg.toLowerCase() !== ".loominal");
  if (dotDir !== undefined) {
    throw new InvalidMemoryInputError(
      `export never writes into a dot-directory (${dotDir}/ holds tool configuration); choose a path outside it, e.g. .loominal/ or the project directory`,
    );
  }
  const name = basename(abs).toLowerCase();
  if (EXPORT_PROTECTED_NAMES.includes(name)) {
    throw new InvalidMemoryInputError(
      `export never writes ${basename(abs)} (${EXPORT_PROTECTED_NAMES.join(", ")} configure the project); choose another file name`,
    );
  }
  walkParents(root, realRoot(root), abs, path, false);
  const st = lstatOrUndefined(abs);
  if (st?.isSymbolicLink()) throw new SymlinkRefusedError(path);
  if (st && !st.isFile()) throw new InvalidMemoryInputError(`path ${path} exists and is not a file`);
  return abs;
}

/** Resolves an existing file inside the project directory for reading (symbolic links are followed, then checked). */
export function importPathInside(projectDir: string, path: string): string {
  const root = resolve(projectDir);
  const abs = resolve(root, path);
  if (!inside(root, abs)) throw new PathOutsideProjectError(path, projectDir);
  if (!existsSync(abs)) {
    throw new InvalidMemoryInputError(
      `file ${path} does not exist in the project directory; export one with pattern_export first`,
    );
  }
  const real = realpathSync(abs);
  if (!inside(realRoot(root), real)) throw new PathOutsideProjectError(path, projectDir);
  if (!statSync(real).isFile()) throw new InvalidMemoryInputError(`path ${path} is not a file`);
  return real;
}

/** Validated like pattern_export's input (`exportInputSchema`). */
export type ExportOptions = z.input<typeof exportInputSchema>;

export interface ExportResult {
  /** The file written, relative to the project directory. */
  path: string;
  count: number;
  bytes: number;
  byScope: Record<string, number>;
}

/**
 * Writes every memory the caller may read (optionally one scope and/or category) to a JSON file in the
 * project. A new file is created exclusively (`wx`: an entry that appears in the meantime, link or not,
 * is never written through); with `overwrite` an existing earlier export is replaced by renaming a new
 * file over it, and any other existing file is refused.
 */
export async function exportMemories(
  store: MemoryStore,
  projectDir: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const input = parseInput(exportInputSchema, options);
  if (input.scope && input.category) {
    const problem = memoryPairProblem(input.scope, input.category);
    if (problem) throw new InvalidMemoryInputError(problem, { scope: input.scope, category: input.category });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const requested = input.path ?? `.loominal/pattern-export-${stamp}.json`;
  let abs: string;
  try {
    abs = exportPathInside(projectDir, requested);
  } catch (err) {
    throw asWriteError(err, requested);
  }
  const exists = lstatOrUndefined(abs) !== undefined;
  if (exists && input.overwrite !== true) {
    throw new InvalidMemoryInputError(
      `file ${requested} already exists; pass overwrite: true or choose another path`,
    );
  }
  if (exists) await requireEarlierExport(abs, requested);
  const memories = await store.list({
    ...(input.scope ? { scopes: [input.scope] } : {}),
    ...(input.category ? { categories: [input.category] } : {}),
  });
  const records: MemoryRecord[] = memories.map(({ expiresAt: _expiresAt, ...record }) => record);
  const file: MemoryExport = {
    format: EXPORT_FORMAT,
    version: 1,
    exportedAt: new Date().toISOString(),
    memories: records,
  };
  const text = `${JSON.stringify(file, null, 2)}\n`;
  try {
    const root = resolve(projectDir);
    const real = realRoot(root);
    walkParents(root, real, abs, requested, true);
    // The parent as it is now, links resolved: a directory swapped for a link since the walk is caught.
    if (!atOrInside(real, realpathSync(dirname(abs))))
      throw new PathOutsideProjectError(requested, projectDir);
    if (exists) await replaceFile(abs, text);
    else await createFile(abs, text, requested);
  } catch (err) {
    throw asWriteError(err, requested);
  }
  const byScope: Record<string, number> = {};
  for (const r of records) byScope[r.scope] = (byScope[r.scope] ?? 0) + 1;
  return {
    path: relative(resolve(projectDir), abs).split(sep).join("/"),
    count: records.length,
    bytes: Buffer.byteLength(text),
    byScope,
  };
}

/** `overwrite` replaces only a file an earlier export wrote; it is read without following a link. */
async function requireEarlierExport(abs: string, requested: string): Promise<void> {
  let format: unknown;
  try {
    const handle = await open(abs, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const { size } = await handle.stat();
      if (size <= IMPORT_MAX_BYTES)
        format = (JSON.parse(await handle.readFile("utf8")) as { format?: unknown }).format;
    } finally {
      await handle.close();
    }
  } catch {
    format = undefined;
  }
  if (format !== EXPORT_FORMAT) {
    throw new InvalidMemoryInputError(
      `file ${requested} exists and is not a Pattern export; overwrite replaces only earlier exports, choose another path`,
    );
  }
}

async function createFile(abs: string, text: string, requested: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(abs, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new InvalidMemoryInputError(
        `file ${requested} already exists; pass overwrite: true or choose another path`,
      );
    }
    throw err;
  }
  try {
    await handle.writeFile(text, "utf8");
  } finally {
    await handle.close();
  }
}

/** Writes a new file next to `abs` and renames it over `abs`: a link put there meanwhile is replaced, not followed. */
async function replaceFile(abs: string, text: string): Promise<void> {
  const tmp = `${abs}.${randomId().slice(0, 12)}.tmp`;
  const handle = await open(tmp, "wx", 0o600);
  try {
    await handle.writeFile(text, "utf8");
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, abs);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** File-system failures become invalid_input naming the path, not an internal error. */
function asWriteError(err: unknown, requested: string): unknown {
  if (err instanceof LoominalError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string") return err;
  return new InvalidMemoryInputError(
    `cannot write ${requested} (${code}); check the path and the permissions of its directory`,
    { path: requested, errno: code },
  );
}

/**
 * Validated like pattern_import's input (`importInputSchema`). `skipDuplicates` (default true) skips
 * memories whose scope, category and content equal one the caller can already read.
 */
export type ImportOptions = z.input<typeof importInputSchema>;

/** Reads an export file from the project and writes its memories under the caller's own identity. */
export async function importMemories(
  store: MemoryStore,
  projectDir: string,
  options: ImportOptions,
): Promise<ImportSummary> {
  const input = parseInput(importInputSchema, options);
  const real = importPathInside(projectDir, input.path);
  const size = statSync(real).size;
  if (size > IMPORT_MAX_BYTES) {
    throw new InvalidMemoryInputError(
      `file ${input.path} is ${size} bytes; the import limit is ${IMPORT_MAX_BYTES}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(real, "utf8"));
  } catch (cause) {
    if (cause instanceof SyntaxError) {
      throw new InvalidMemoryInputError(
        `file ${input.path} is not valid JSON; use a file written by pattern_export`,
      );
    }
    throw new InvalidMemoryInputError(`file ${input.path} cannot be read; check its permissions`);
  }
  const parsed = memoryExportSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("; ");
    throw new InvalidMemoryInputError(`file ${input.path} is not a Pattern export: ${problems}`);
  }
  return store.importRecords(parsed.data.memories, {
    ...(input.skipDuplicates !== undefined ? { skipDuplicates: input.skipDuplicates } : {}),
  });
}
