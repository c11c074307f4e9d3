import { Writable } from "node:stream";
import { createLogger, loadConfig } from "@loominal/fabric";
import { tempDir } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { resolveWorkDir } from "./open.js";

describe("the Shuttle work dir", () => {
  it("comes from LOOMINAL_SHUTTLE_WORK_DIR, or the deprecated SHUTTLE_WORK_DIR with a warning", () => {
    const dir = tempDir("shuttle-env-");
    const lines: string[] = [];
    const logger = createLogger({
      name: "t",
      env: {},
      destination: new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    });
    try {
      const config = loadConfig({ env: { LOOMINAL_PROJECT_DIR: dir.path, LOOMINAL_PROJECT_ID: "p1" } });
      expect(resolveWorkDir(config, {}, logger)).toBe(`${dir.path}/.loominal/shuttle`);
      expect(resolveWorkDir(config, { LOOMINAL_SHUTTLE_WORK_DIR: "runs" }, logger)).toBe(`${dir.path}/runs`);
      expect(lines).toEqual([]);
      expect(resolveWorkDir(config, { SHUTTLE_WORK_DIR: "/srv/old" }, logger)).toBe("/srv/old");
      expect(lines.join("")).toContain("SHUTTLE_WORK_DIR is deprecated; set LOOMINAL_SHUTTLE_WORK_DIR");
      expect(
        resolveWorkDir(
          config,
          { LOOMINAL_SHUTTLE_WORK_DIR: "/srv/new", SHUTTLE_WORK_DIR: "/srv/old" },
          logger,
        ),
      ).toBe("/srv/new");
    } finally {
      dir.cleanup();
    }
  });
});
