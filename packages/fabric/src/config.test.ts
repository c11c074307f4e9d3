import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@loominal/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_NATS_URL, loadConfig, redactUrl } from "./config.js";

const dirs: Array<{ cleanup: () => void }> = [];
function project(file?: unknown): string {
  const d = tempDir();
  dirs.push(d);
  if (file !== undefined) writeFileSync(join(d.path, ".loominal.json"), JSON.stringify(file));
  return d.path;
}
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

describe("loadConfig", () => {
  it("derives everything from defaults", () => {
    const cfg = loadConfig({ cwd: project(), env: {} });
    expect(cfg.projectId).toMatch(/^[0-9a-f]{16}$/);
    expect(cfg.agentId).toMatch(/^[0-9a-f]{32}$/);
    expect(cfg.userId).toMatch(/^[0-9a-f]{32}$/);
    expect(cfg.agentName).toBe("default");
    expect(cfg.nats.servers).toEqual([DEFAULT_NATS_URL]);
    expect(cfg.file.warp.work.maxAttempts).toBe(3);
  });

  it("takes the file over defaults and the environment over the file", () => {
    const dir = project({ projectId: "from-file", natsUrl: "nats://127.0.0.1:5000", agentName: "filer" });
    const fromFile = loadConfig({ cwd: dir, env: {} });
    expect(fromFile.projectId).toBe("from-file");
    expect(fromFile.agentName).toBe("filer");
    expect(fromFile.nats.servers).toEqual(["nats://127.0.0.1:5000"]);
    const fromEnv = loadConfig({
      cwd: dir,
      env: {
        LOOMINAL_PROJECT_ID: "from-env",
        NATS_URL: "nats://127.0.0.1:6000,nats://127.0.0.1:6001",
        LOOMINAL_AGENT_NAME: "envy",
      },
    });
    expect(fromEnv.projectId).toBe("from-env");
    expect(fromEnv.agentName).toBe("envy");
    expect(fromEnv.agentId).not.toBe(fromFile.agentId);
    expect(fromEnv.nats.servers).toEqual(["nats://127.0.0.1:6000", "nats://127.0.0.1:6001"]);
  });

  it("uses LOOMINAL_PROJECT_DIR for the project", () => {
    const dir = project({ projectId: "via-dir" });
    expect(loadConfig({ cwd: "/", env: { LOOMINAL_PROJECT_DIR: dir } }).projectId).toBe("via-dir");
  });

  it("names the variable that is wrong", () => {
    const dir = project();
    expect(() => loadConfig({ cwd: dir, env: { LOOMINAL_PROJECT_ID: "Bad.Id" } })).toThrow(
      /^LOOMINAL_PROJECT_ID: projectId "Bad\.Id"/,
    );
    expect(() => loadConfig({ cwd: dir, env: { LOOMINAL_AGENT_ID: "xyz" } })).toThrow(
      /LOOMINAL_AGENT_ID: agentId "xyz"/,
    );
    expect(() => loadConfig({ cwd: dir, env: { NATS_URL: "http://x y" } })).toThrow(/NATS_URL/);
    expect(() => loadConfig({ cwd: dir, env: { NATS_PASSWORD: "s3cret" } })).toThrow(
      /NATS_PASSWORD is set without NATS_USER/,
    );
    expect(() => loadConfig({ cwd: dir, env: { NATS_CREDS: "/nope.creds" } })).toThrow(
      /NATS_CREDS points to \/nope\.creds/,
    );
    expect(() => loadConfig({ cwd: dir, env: { LOOMINAL_PROJECT_DIR: "/does/not/exist" } })).toThrow(
      /LOOMINAL_PROJECT_DIR/,
    );
  });

  it("names the bad key in .loominal.json", () => {
    expect(() => loadConfig({ cwd: project({ warp: { heartbeatIntervalMs: "fast" } }), env: {} })).toThrow(
      /\.loominal\.json is invalid: warp\.heartbeatIntervalMs/,
    );
    const dir = project();
    writeFileSync(join(dir, ".loominal.json"), "{ not json");
    expect(() => loadConfig({ cwd: dir, env: {} })).toThrow(/is not valid JSON/);
  });

  it("never puts a password in an error message", () => {
    let message = "";
    try {
      loadConfig({ cwd: project(), env: { NATS_URL: "nats://user:hunter2@ bad" } });
    } catch (err) {
      message = String(err);
    }
    expect(message).toMatch(/NATS_URL/);
    expect(message).not.toContain("hunter2");
    expect(redactUrl("nats://u:p@host:4222")).toBe("nats://[redacted]@host:4222");
  });
});
