import { existsSync, mkdirSync, realpathSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import {
  type MemoryCategory,
  type MemoryExport,
  type MemoryRecord,
  memoryExportSchema,
  type Scope,
} from "@loominal/protocol";
import { InvalidMemoryInputError, PathOutsideProjectError } from "./errors.js";
import type { ImportSummary, MemoryStore } from "./store.js";

/** Largest export file `importMemories` reads. */
export const IMPORT_MAX_BYTES = 64 * 1024 * 1024;

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

function requireJsonName(path: string): void {
  if (!path.toLowerCase().endsWith(".json")) {
    throw new InvalidMemoryInputError(`path ${path} must end in .json (export files are JSON)`);
  }
}

/**
 * Resolves a path for writing inside the project directory. Relative paths are taken from the project
 * directory; `..` and symbolic links that lead outside are refused, checked on the real path of the
 * deepest directory that exists.
 */
export function exportPathInside(projectDir: string, path: string): string {
  requireJsonName(path);
  const abs = resolve(projectDir, path);
  if (!inside(projectDir, abs)) throw new PathOutsideProjectError(path, projectDir);
  let existing = dirname(abs);
  while (!existsSync(existing)) existing = dirname(existing);
  const realExisting = realpathSync(existing);
  if (realExisting !== projectDir && !inside(projectDir, realExisting))
    throw new PathOutsideProjectError(path, projectDir);
  if (existsSync(abs)) {
    const real = realpathSync(abs);
    if (!inside(projectDir, real)) throw new PathOutsideProjectError(path, projectDir);
    if (!statSync(real).isFile()) throw new InvalidMemoryInputError(`path ${path} exists and is not a file`);
  }
  return abs;
}

/** Resolves an existing file inside the project directory for reading (symbolic links are followed, then checked). */
export function importPathInside(projectDir: string, path: string): string {
  const abs = resolve(projectDir, path);
  if (!inside(projectDir, abs)) throw new PathOutsideProjectError(path, projectDir);
  if (!existsSync(abs)) {
    throw new InvalidMemoryInputError(
      `file ${path} does not exist in the project directory; export one with pattern_export first`,
    );
  }
  const real = realpathSync(abs);
  if (!inside(projectDir, real)) throw new PathOutsideProjectError(path, projectDir);
  if (!statSync(real).isFile()) throw new InvalidMemoryInputError(`path ${path} is not a file`);
  return real;
}

export interface ExportOptions {
  scope?: Scope;
  category?: MemoryCategory;
  /** Where to write, inside the project directory. Default `.loominal/pattern-export-<time>.json`. */
  path?: string;
  /** Replace an existing file. Default false. */
  overwrite?: boolean;
}

export interface ExportResult {
  /** The file written, relative to the project directory. */
  path: string;
  count: number;
  bytes: number;
  byScope: Record<string, number>;
}

/** Writes every memory the caller may read (optionally one scope or category) to a JSON file in the project. */
export async function exportMemories(
  store: MemoryStore,
  projectDir: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const requested = options.path ?? `.loominal/pattern-export-${stamp}.json`;
  const abs = exportPathInside(projectDir, requested);
  if (existsSync(abs) && options.overwrite !== true) {
    throw new InvalidMemoryInputError(
      `file ${requested} already exists; pass overwrite: true or choose another path`,
    );
  }
  const memories = await store.list({
    ...(options.scope ? { scopes: [options.scope] } : {}),
    ...(options.category ? { categories: [options.category] } : {}),
  });
  const records: MemoryRecord[] = memories.map(({ expiresAt: _expiresAt, ...record }) => record);
  const file: MemoryExport = {
    format: "loominal-pattern-export",
    version: 1,
    exportedAt: new Date().toISOString(),
    memories: records,
  };
  const text = `${JSON.stringify(file, null, 2)}\n`;
  mkdirSync(dirname(abs), { recursive: true });
  await writeFile(abs, text, { encoding: "utf8", mode: 0o600 });
  const byScope: Record<string, number> = {};
  for (const r of records) byScope[r.scope] = (byScope[r.scope] ?? 0) + 1;
  return {
    path: relative(projectDir, abs).split(sep).join("/"),
    count: records.length,
    bytes: Buffer.byteLength(text),
    byScope,
  };
}

export interface ImportOptions {
  path: string;
  /** Skip memories whose scope, category and content equal one the caller can already read. Default true. */
  skipDuplicates?: boolean;
}

/** Reads an export file from the project and writes its memories under the caller's own identity. */
export async function importMemories(
  store: MemoryStore,
  projectDir: string,
  options: ImportOptions,
): Promise<ImportSummary> {
  const real = importPathInside(projectDir, options.path);
  const size = statSync(real).size;
  if (size > IMPORT_MAX_BYTES) {
    throw new InvalidMemoryInputError(
      `file ${options.path} is ${size} bytes; the import limit is ${IMPORT_MAX_BYTES}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(real, "utf8"));
  } catch (cause) {
    if (cause instanceof SyntaxError) {
      throw new InvalidMemoryInputError(
        `file ${options.path} is not valid JSON; use a file written by pattern_export`,
      );
    }
    throw new InvalidMemoryInputError(`file ${options.path} cannot be read; check its permissions`);
  }
  const parsed = memoryExportSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("; ");
    throw new InvalidMemoryInputError(`file ${options.path} is not a Pattern export: ${problems}`);
  }
  return store.importRecords(parsed.data.memories, {
    ...(options.skipDuplicates !== undefined ? { skipDuplicates: options.skipDuplicates } : {}),
  });
}
