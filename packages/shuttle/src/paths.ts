import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { constants, link, lstat, mkdir, open, readdir, realpath, rename, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { NotRegularFileError, PathEscapeError } from "./errors.js";

/**
 * Flags of every read: O_NONBLOCK so that opening a FIFO or a device that slipped past the lstat check
 * returns at once instead of waiting for a writer; O_NOFOLLOW because the path read is already the real one.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

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
    const temp = await this.#writeTemp(segments, data);
    const target = this.path(...segments);
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
   * throws PathEscapeError when it (or a link on its way) resolves outside the work dir, and
   * NotRegularFileError when it is not a regular file (a FIFO, socket, device or directory), which is
   * never opened: opening a FIFO would wait for a writer forever.
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
    let before: Stats;
    try {
      before = await lstat(real);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
    if (!before.isFile()) throw new NotRegularFileError(absolutePath, fileKind(before));
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(real, READ_FLAGS);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      // ELOOP: the file was replaced by a link after the real path was resolved.
      if (isErrno(err, "ELOOP")) throw new PathEscapeError(absolutePath, this.root);
      throw err;
    }
    try {
      // Checked again on the open descriptor: the file may have been swapped since the lstat.
      const st = await fh.stat();
      if (!st.isFile()) throw new NotRegularFileError(absolutePath, fileKind(st));
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

  /**
   * Creates a file that must not exist yet; false when it already exists. The content is written to a
   * temporary file first and linked into place, so the file never exists half-written: a reader sees
   * either no file or all of it.
   */
  async createExclusive(segments: string[], data: string): Promise<boolean> {
    const temp = await this.#writeTemp(segments, data);
    try {
      await link(temp, this.path(...segments));
      return true;
    } catch (err) {
      if (isErrno(err, "EEXIST")) return false;
      throw err;
    } finally {
      await rm(temp, { force: true });
    }
  }

  /**
   * Moves a file out of the way under a unique name in the same directory, atomically: of several
   * processes moving the same file, one gets it. Returns where it went, or undefined when it was gone.
   */
  async moveAside(segments: string[]): Promise<string | undefined> {
    const target = this.path(...segments);
    const aside = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.aside`);
    try {
      await rename(target, aside);
      return aside;
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
  }

  /** Puts a file moved aside back in place unless something took its place meanwhile; removes the aside copy. */
  async putBack(aside: string, segments: string[]): Promise<boolean> {
    this.assertInside(aside);
    try {
      await link(aside, this.path(...segments));
      return true;
    } catch (err) {
      if (isErrno(err, "EEXIST")) return false;
      throw err;
    } finally {
      await rm(aside, { force: true });
    }
  }

  /** Removes a file by absolute path (one this work dir handed out, such as a moved-aside copy). */
  async removePath(absolutePath: string): Promise<void> {
    this.assertInside(resolve(absolutePath));
    await rm(absolutePath, { force: true });
  }

  async #writeTemp(segments: string[], data: string): Promise<string> {
    const name = segments.at(-1);
    if (name === undefined) throw new PathEscapeError("", this.root);
    const dir = await this.ensureDir(...segments.slice(0, -1));
    const temp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const fh = await open(temp, "wx", 0o644);
    try {
      await fh.writeFile(data, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    return temp;
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

function fileKind(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isDirectory()) return "a directory";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && "code" in err && err.code === code;
}
