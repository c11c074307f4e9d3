import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { NotRegularFileError, PathEscapeError } from "./errors.js";
import { WorkDir } from "./paths.js";

const dirs: Array<{ cleanup: () => void }> = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

async function setup() {
  const base = tempDir("shuttle-paths-");
  dirs.push(base);
  const outside = join(base.path, "outside");
  mkdirSync(outside);
  const wd = await WorkDir.open(join(base.path, "project", ".loominal", "shuttle"));
  return { wd, outside };
}

describe("WorkDir", () => {
  it("refuses '..', absolute and empty segments", async () => {
    const { wd } = await setup();
    expect(() => wd.path("..", "x")).toThrow(PathEscapeError);
    expect(() => wd.path("a/../../x")).toThrow(PathEscapeError);
    expect(() => wd.path("/etc/passwd")).toThrow(PathEscapeError);
    expect(() => wd.path("a//b")).toThrow(PathEscapeError);
    expect(wd.path("a", "b.md")).toBe(join(wd.root, "a", "b.md"));
  });

  it("writes files atomically inside and reads them back", async () => {
    const { wd } = await setup();
    const p = await wd.writeFile(["o1", "subtasks", "a", "output.md"], "hello");
    expect(readFileSync(p, "utf8")).toBe("hello");
    expect(await wd.readFile(p)).toEqual({ content: "hello", bytes: 5, truncated: false });
    expect(await wd.readFile(p, 2)).toEqual({ content: "he", bytes: 5, truncated: true });
    expect(await wd.readFile(join(wd.root, "nope"))).toBeUndefined();
  });

  it("does not create directories or write through a symbolic link that leaves the work dir", async () => {
    const { wd, outside } = await setup();
    symlinkSync(outside, join(wd.root, "evil"));
    await expect(wd.ensureDir("evil", "sub")).rejects.toThrow(PathEscapeError);
    await expect(wd.writeFile(["evil", "x.md"], "x")).rejects.toThrow(PathEscapeError);
    expect(() => readFileSync(join(outside, "x.md"))).toThrow();
  });

  it("refuses to read a file whose link points outside the work dir", async () => {
    const { wd, outside } = await setup();
    writeFileSync(join(outside, "secret.txt"), "secret");
    mkdirSync(join(wd.root, "o1"));
    symlinkSync(join(outside, "secret.txt"), join(wd.root, "o1", "output.md"));
    await expect(wd.readFile(join(wd.root, "o1", "output.md"))).rejects.toThrow(PathEscapeError);
    await expect(wd.readFile(join(outside, "secret.txt"))).rejects.toThrow(PathEscapeError);
  });

  it("replaces a symbolic link at a write target instead of writing through it", async () => {
    const { wd, outside } = await setup();
    writeFileSync(join(outside, "victim.txt"), "original");
    mkdirSync(join(wd.root, "o1"));
    symlinkSync(join(outside, "victim.txt"), join(wd.root, "o1", "synthesis.md"));
    await wd.writeFile(["o1", "synthesis.md"], "new");
    expect(readFileSync(join(outside, "victim.txt"), "utf8")).toBe("original");
    expect(readFileSync(join(wd.root, "o1", "synthesis.md"), "utf8")).toBe("new");
  });

  it("creates a lock file only once", async () => {
    const { wd } = await setup();
    expect(await wd.createExclusive(["o1", "driver.json"], "a")).toBe(true);
    expect(await wd.createExclusive(["o1", "driver.json"], "b")).toBe(false);
  });

  it("refuses a FIFO or a directory without opening it, naming the file", { timeout: 10_000 }, async () => {
    const { wd } = await setup();
    mkdirSync(join(wd.root, "o1"));
    const fifo = join(wd.root, "o1", "output.md");
    execFileSync("mkfifo", [fifo]);
    const read = wd.readFile(fifo);
    await expect(read).rejects.toThrow(NotRegularFileError);
    await expect(read).rejects.toThrow(`${fifo} is a FIFO (named pipe), not a regular file`);
    await expect(wd.readFile(join(wd.root, "o1"))).rejects.toThrow("is a directory, not a regular file");
  });

  it("creates a lock file whole: it exists with its content or not at all", async () => {
    const { wd } = await setup();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => wd.createExclusive(["o1", "driver.json"], `writer ${i}`)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect(readFileSync(join(wd.root, "o1", "driver.json"), "utf8")).toBe(`writer ${winner}`);
  });
});
