import { randomBytes } from "node:crypto";
import { lstat, mkdir, open, readdir, realpath, rename, rm } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { PathEscapeError } from "./errors.js";

const SEGMENT_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** The contents of a file read from the work dir. */
export interface FileRead {
  content: string;
  bytes: number;
  truncated: boolean;
}

/**
 * The Shuttle work dir. Every path Shuttle reads or writes goes through here and is checked twice:
 * lexically (no `..`, no absolute segment) and on disk (the real path, after following symbolic links,
 * is still under the work dir's real path). Directories are created one level at a time and a symbolic
 * link met on the way is refused, so a link planted inside the work dir cannot redirect a write.
 */
export class WorkDir {
  /** The real path of the work dir. */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Creates the work dir if needed (it is the one directory Shuttle creates outside itself). */
  static async open(path: string): Promise<WorkDir> {
    await mkdir(path, { recursive: true });
    return new WorkDir(await realpath(path));
  }

  /** The absolute path of `segments` under the root, checked lexically. */
  path(...segments: string[]): string {
    const parts = segments.flatMap((s) => s.split(/[\\/]/));
    for (const part of parts) {
      if (!SEGMENT_RE.test(part) || part === "." || part === "..") {
        throw new PathEscapeError(segments.join("/"), this.root);
      }
    }
    const p = resolve(this.root, ...parts);
    this.assertInside(p);
    return p;
  }

  assertInside(absolutePath: string): void {
    const rel = relative(this.root, absolutePath);
    if (rel === "") return;
    if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))
      throw new PathEscapeError(absolutePath, this.root);
  }

  /** Creates `segments` as nested directories, refusing any existing component that is not a real directory. */
  async ensureDir(...segments: string[]): Promise<string> {
    const target = this.path(...segments);
    const parts = relative(this.root, target).split(sep).filter(Boolean);
    let current = this.root;
    for (const part of parts) {
      current = join(current, part);
      try {
        await mkdir(current);
      } catch (err) {
        if (!isErrno(err, "EEXIST")) throw err;
      }
      const st = await lstat(current);
      if (st.isSymbolicLink() || !st.isDirectory()) throw new PathEscapeError(current, this.root);
    }
    return target;
  }

  /**
   * Writes a file atomically (temporary file in the same directory, fsync, rename). A symbolic link at
   * the target is replaced, never written through.
   */
  async writeFile(segments: string[], data: string): Promise<string> {
    const name = segments.at(-1);
    if (name === undefined) throw new PathEscapeError("", this.root);
    const dir = await this.ensureDir(...segments.slice(0, -1));
    const target = this.path(...segments);
    const temp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const fh = await open(temp, "wx", 0o644);
    try {
      await fh.writeFile(data, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return target;
  }

  /**
   * Reads a file under the work dir, at most `maxBytes` of it. Returns undefined when it does not exist;
   * throws PathEscapeError when it (or a link on its way) resolves outside the work dir.
   */
  async readFile(absolutePath: string, maxBytes = Number.POSITIVE_INFINITY): Promise<FileRead | undefined> {
    this.assertInside(resolve(absolutePath));
    let real: string;
    try {
      real = await realpath(absolutePath);
    } catch (err) {
      if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) return undefined;
      throw err;
    }
    this.assertInside(real);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(real, "r");
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return undefined;
      const length = Math.min(st.size, maxBytes);
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, 0);
      return {
        content: buf.subarray(0, bytesRead).toString("utf8"),
        bytes: st.size,
        truncated: st.size > length,
      };
    } finally {
      await fh.close();
    }
  }

  /** Creates a file that must not exist yet (O_EXCL); false when it already exists. */
  async createExclusive(segments: string[], data: string): Promise<boolean> {
    await this.ensureDir(...segments.slice(0, -1));
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.path(...segments), "wx", 0o644);
    } catch (err) {
      if (isErrno(err, "EEXIST")) return false;
      throw err;
    }
    try {
      await fh.writeFile(data, "utf8");
    } finally {
      await fh.close();
    }
    return true;
  }

  /** Removes a file under the work dir; a missing file is not an error. */
  async remove(segments: string[]): Promise<void> {
    await rm(this.path(...segments), { force: true });
  }

  /** Names of the directories directly under `segments` (none when it does not exist). */
  async listDirs(...segments: string[]): Promise<string[]> {
    const dir = segments.length === 0 ? this.root : this.path(...segments);
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return [];
      throw err;
    }
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && "code" in err && err.code === code;
}
