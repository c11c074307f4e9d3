import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
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

  it("takes the project from the nearest .loominal.json, else the git root, else the directory", () => {
    const root = project();
    const repo = join(root, "repo");
    mkdirSync(join(repo, ".git"), { recursive: true });
    mkdirSync(join(repo, "packages", "api", "src"), { recursive: true });
    const sub = join(repo, "packages", "api", "src");
    const atRoot = loadConfig({ cwd: repo, env: {} });
    const inSub = loadConfig({ cwd: sub, env: {} });
    expect(inSub.projectDir).toBe(realpathSync(repo));
    expect(inSub.projectId).toBe(atRoot.projectId);
    expect(inSub.agentId).toBe(atRoot.agentId);
    // A .loominal.json on the way up wins over the git root.
    writeFileSync(join(repo, "packages", ".loominal.json"), JSON.stringify({ projectId: "packages-only" }));
    expect(loadConfig({ cwd: sub, env: {} })).toMatchObject({
      projectDir: realpathSync(join(repo, "packages")),
      projectId: "packages-only",
    });
    // One above the repository does not: the repository is the boundary.
    writeFileSync(join(root, ".loominal.json"), JSON.stringify({ projectId: "outside" }));
    expect(loadConfig({ cwd: repo, env: {} }).projectId).toBe(atRoot.projectId);
    // Outside any repository and without a project file: the directory itself.
    const plain = join(project(), "a", "b");
    mkdirSync(plain, { recursive: true });
    expect(loadConfig({ cwd: plain, env: {} }).projectDir).toBe(realpathSync(plain));
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

describe("credentials in NATS_URL", () => {
  const settings = (env: Record<string, string>) => loadConfig({ cwd: project(), env }).nats;

  it("moves user:password out of the URL into the settings, percent-decoded", () => {
    expect(settings({ NATS_URL: "nats://alice:s3cret@127.0.0.1:4222" })).toEqual({
      servers: ["nats://127.0.0.1:4222"],
      user: "alice",
      password: "s3cret",
      inboxPrefix: "_INBOX_alice",
    });
    expect(settings({ NATS_URL: "nats://alice:p%40ss%2Fw%3Ard%25@h:1" })).toMatchObject({
      servers: ["nats://h:1"],
      user: "alice",
      password: "p@ss/w:rd%",
    });
  });

  it("sends replies under NATS_INBOX_PREFIX, else under _INBOX_<user>, else nats.js's default", () => {
    expect(settings({ NATS_USER: "ci-bot", NATS_PASSWORD: "x" }).inboxPrefix).toBe("_INBOX_ci-bot");
    expect(
      settings({ NATS_USER: "ci-bot", NATS_PASSWORD: "x", NATS_INBOX_PREFIX: "_INBOX_team.a" }).inboxPrefix,
    ).toBe("_INBOX_team.a");
    expect(settings({}).inboxPrefix).toBeUndefined();
    // A user name that is not a subject token gets no derived prefix rather than a broken one.
    expect(settings({ NATS_USER: "Bob Smith", NATS_PASSWORD: "x" }).inboxPrefix).toBeUndefined();
    expect(() => settings({ NATS_INBOX_PREFIX: "_INBOX.>" })).toThrow(/NATS_INBOX_PREFIX/);
  });

  it("takes the last @ as the end of the credentials, so a raw @ or / in the password works", () => {
    expect(settings({ NATS_URL: "nats://alice:p@ss/w@rd@127.0.0.1:4222" })).toMatchObject({
      servers: ["nats://127.0.0.1:4222"],
      user: "alice",
      password: "p@ss/w@rd",
    });
  });

  it("reads a lone token@ as a token, and keeps every server of a list", () => {
    expect(settings({ NATS_URL: "nats://t0k3n@h1:4222, nats://t0k3n@h2:4222" })).toEqual({
      servers: ["nats://h1:4222", "nats://h2:4222"],
      token: "t0k3n",
    });
    // A comma inside a password does not split the list.
    expect(settings({ NATS_URL: "nats://u:a,b@h1:4222,nats://u:a,b@h2:4222" })).toMatchObject({
      servers: ["nats://h1:4222", "nats://h2:4222"],
      password: "a,b",
    });
  });

  it("accepts the same credentials twice and refuses different ones, without echoing them", () => {
    expect(
      settings({ NATS_URL: "nats://alice:pw@h:1", NATS_USER: "alice", NATS_PASSWORD: "pw" }),
    ).toMatchObject({ user: "alice", password: "pw" });
    const cases: Array<[Record<string, string>, RegExp]> = [
      [
        { NATS_URL: "nats://alice:pw1@h:1", NATS_PASSWORD: "pw2", NATS_USER: "alice" },
        /differ from NATS_USER/,
      ],
      [{ NATS_URL: "nats://alice:pw1@h:1", NATS_TOKEN: "tok" }, /NATS_TOKEN is set too/],
      [{ NATS_URL: "nats://tok1@h:1", NATS_TOKEN: "tok2" }, /differs from NATS_TOKEN/],
      [{ NATS_URL: "nats://tok1@h:1", NATS_USER: "bob" }, /NATS_USER is set too/],
      [{ NATS_URL: "nats://a:pw1@h1:1,nats://a:pw2@h2:1" }, /different credentials for different servers/],
      [{ NATS_URL: "nats://:pw1@h:1" }, /password but no user/],
      [{ NATS_URL: "nats://a:pw1%zz@h:1" }, /malformed %-escape/],
    ];
    for (const [env, rule] of cases) {
      let message = "";
      try {
        settings(env);
      } catch (err) {
        message = String(err);
      }
      expect(message, JSON.stringify(env)).toMatch(rule);
      expect(message).toMatch(/NATS_URL/);
      for (const secret of ["pw1", "pw2", "tok1", "tok2"]) expect(message).not.toContain(secret);
    }
  });

  it("refuses credentials in .loominal.json, which is usually committed", () => {
    const dir = project({ natsUrl: "nats://alice:pw@h:1" });
    expect(() => loadConfig({ cwd: dir, env: {} })).toThrow(/\.loominal\.json natsUrl contains credentials/);
  });

  it("names .loominal.json, not NATS_URL, when the bad URL came from the file", () => {
    const dir = project({ natsUrl: "http://127.0.0.1:4222" });
    let message = "";
    try {
      loadConfig({ cwd: dir, env: {} });
    } catch (err) {
      message = String(err);
    }
    expect(message).toMatch(/\.loominal\.json natsUrl contains "http:\/\/127\.0\.0\.1:4222"/);
    expect(message).not.toMatch(/NATS_URL/);
  });

  it("requires TLS for tls:// URLs and refuses a list that mixes tls:// with nats://", () => {
    expect(settings({ NATS_URL: "tls://h1:4222,tls://h2:4222" })).toEqual({
      servers: ["tls://h1:4222", "tls://h2:4222"],
      tls: {},
    });
    expect(settings({ NATS_URL: "nats://h1:4222" }).tls).toBeUndefined();
    expect(() => settings({ NATS_URL: "tls://h1:4222,nats://h2:4222" })).toThrow(/mixes tls:\/\//);
  });

  it("names the unknown top-level key of .loominal.json and lists the known ones", () => {
    expect(() => loadConfig({ cwd: project({ wrap: {} }), env: {} })).toThrow(
      /"wrap".*the keys are .*warp.*weft, runner, agent/,
    );
  });
});

describe("redactUrl", () => {
  it.each([
    ["nats://u:p@host:4222", "nats://[redacted]@host:4222"],
    ["nats://u:p@ss/w@rd@host:4222", "nats://[redacted]@host:4222"],
    ["nats://token@host", "nats://[redacted]@host"],
    ["nats://a:1@h1:1,nats://b:2@h2:2", "nats://[redacted]@h1:1,nats://[redacted]@h2:2"],
    ["nats://u:a,b@h1:1", "nats://[redacted]@h1:1"],
    ["u:p@host:4222", "[redacted]@host:4222"],
    ["nats://host:4222", "nats://host:4222"],
  ])("%s → %s", (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});
