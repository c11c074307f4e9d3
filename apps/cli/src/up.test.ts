import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Fabric, processAlive } from "@loominal/fabric";
import { eventually, freePort, NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exportedUrl, runCli } from "./cli.test-helper.js";
import { LocalNats, localNatsPaths } from "./local-nats.js";

/** Every temp project a test made; afterAll stops whatever server each one still runs. */
const projects: Array<{ path: string; cleanup: () => void }> = [];

function project(): string {
  const dir = tempDir("loom-cli-");
  projects.push(dir);
  return dir.path;
}

async function jetStreamAnswers(url: string): Promise<boolean> {
  const fabric = await Fabric.connect({ nats: { servers: [url] } });
  try {
    const account = await (await fabric.jsm()).getAccountInfo();
    return account.limits !== undefined;
  } finally {
    await fabric.close();
  }
}

let jetStreamServer: NatsServer;
let plainServer: NatsServer;
let authServer: NatsServer;
const AUTH_PASSWORD = "p@ss/w0rd";
const authDir = tempDir("loom-cli-auth-");

beforeAll(async () => {
  jetStreamServer = await NatsServer.start();
  plainServer = await NatsServer.start({ jetstream: false });
  const configFile = join(authDir.path, "auth.json");
  writeFileSync(
    configFile,
    JSON.stringify({ authorization: { users: [{ user: "alice", password: AUTH_PASSWORD }] } }),
  );
  authServer = await NatsServer.start({ configFile });
});

afterAll(async () => {
  for (const p of projects) {
    await new LocalNats(p.path).stop({ timeoutMs: 5_000 }).catch(() => undefined);
    p.cleanup();
  }
  await jetStreamServer?.stop();
  await plainServer?.stop();
  await authServer?.stop();
  authDir.cleanup();
});

describe("loominal up --nats-only, and what up checks before it starts anything", () => {
  test("starts a JetStream server under .loominal/ on NATS_URL's port; nats status sees it; nats stop stops it", async () => {
    const cwd = project();
    const port = await freePort();
    const env = { NATS_URL: `nats://127.0.0.1:${port}` };

    const up = await runCli(["up", "--nats-only"], { cwd, env });
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("starting a local server");
    expect(exportedUrl(up.stdout)).toBe(`nats://127.0.0.1:${port}`);
    expect(up.stdout).toContain("mcp-config");

    const paths = localNatsPaths(realpathSync(cwd));
    expect(existsSync(paths.storeDir)).toBe(true);
    expect(existsSync(paths.logFile)).toBe(true);
    const pid = Number(readFileSync(paths.pidFile, "utf8").trim());
    expect(processAlive(pid)).toBe(true);
    expect(await jetStreamAnswers(`nats://127.0.0.1:${port}`)).toBe(true);

    const status = await runCli(["nats", "status", "--json"], { cwd, env });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      running: true,
      reachable: true,
      pid,
      url: `nats://127.0.0.1:${port}`,
      jetstream: true,
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });

    const again = await runCli(["up", "--nats-only"], { cwd, env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`this project's local server, pid ${pid}`);

    const stop = await runCli(["nats", "stop"], { cwd, env });
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(`Stopped nats-server (pid ${pid})`);
    await eventually(() => expect(processAlive(pid)).toBe(false));
    expect(existsSync(paths.pidFile)).toBe(false);

    const after = await runCli(["nats", "status"], { cwd, env });
    expect(after.code).toBe(3);
    expect(after.stdout).toContain("not running");
  });

  test("the store survives a stop: a stream created before is there after the next up", async () => {
    const cwd = project();
    const env = { NATS_URL: `nats://127.0.0.1:${await freePort()}` };
    const first = await runCli(["up", "--nats-only"], { cwd, env });
    expect(first.code).toBe(0);
    const url = exportedUrl(first.stdout) ?? "";
    const fabric = await Fabric.connect({ nats: { servers: [url] } });
    await (await fabric.jsm()).streams.add({ name: "KEPT", subjects: ["kept.>"] });
    await fabric.close();
    expect((await runCli(["nats", "stop"], { cwd, env })).code).toBe(0);

    const second = await runCli(["up", "--nats-only"], { cwd, env });
    expect(second.code).toBe(0);
    const again = await Fabric.connect({ nats: { servers: [exportedUrl(second.stdout) ?? ""] } });
    try {
      expect((await (await again.jsm()).streams.info("KEPT")).config.name).toBe("KEPT");
    } finally {
      await again.close();
    }
  });

  test("reuses a reachable JetStream server and starts nothing", async () => {
    const cwd = project();
    const up = await runCli(["up", "--nats-only"], { cwd, env: { NATS_URL: jetStreamServer.url } });
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`Using NATS at ${jetStreamServer.url}`);
    expect(up.stdout).toContain("with JetStream");
    expect(exportedUrl(up.stdout)).toBe(jetStreamServer.url);
    expect(existsSync(join(cwd, ".loominal"))).toBe(false);
  });

  test("refuses a NATS_URL that answers without JetStream and starts nothing", async () => {
    const cwd = project();
    const up = await runCli(["up"], { cwd, env: { NATS_URL: plainServer.url } });
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(`NATS at ${plainServer.url} (NATS_URL, nats-server`);
    expect(up.stderr).toContain("the server runs without JetStream");
    expect(up.stderr).toContain("Enable JetStream there");
    expect(up.stderr).toContain("No local server was started.");
    expect(exportedUrl(up.stdout)).toBeUndefined();
    expect(existsSync(join(cwd, ".loominal"))).toBe(false);
  });

  test("uses a NATS_URL with user:password@ (raw @ and / in the password) and never prints the password", async () => {
    const cwd = project();
    const up = await runCli(["up", "--nats-only"], {
      cwd,
      env: { NATS_URL: `nats://alice:${AUTH_PASSWORD}@127.0.0.1:${authServer.port}` },
    });
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`Using NATS at ${authServer.url}: nats-server`);
    expect(exportedUrl(up.stdout)).toBe(authServer.url);
    expect(up.stdout).toContain("give them the same credentials");
    expect(up.stdout + up.stderr).not.toContain("w0rd");
    expect(up.stdout + up.stderr).not.toContain("[redacted]");
    expect(existsSync(join(cwd, ".loominal"))).toBe(false);
  });

  test("refuses wrong credentials with what to fix, prints no password and starts nothing", async () => {
    const cwd = project();
    const attempts: Array<Record<string, string>> = [
      { NATS_URL: `nats://alice:wr0ng-pw@127.0.0.1:${authServer.port}` },
      { NATS_URL: authServer.url, NATS_USER: "alice", NATS_PASSWORD: "wr0ng-pw" },
      { NATS_URL: authServer.url },
    ];
    for (const env of attempts) {
      const up = await runCli(["up"], { cwd, env });
      expect(up.code, JSON.stringify(env)).toBe(1);
      expect(up.stderr).toContain(`NATS at ${authServer.url} (NATS_URL) refused the connection`);
      expect(up.stderr).toMatch(/Authorization Violation/i);
      expect(up.stderr).toContain("Fix the credentials");
      expect(up.stderr).toContain("No local server was started.");
      expect(up.stdout + up.stderr).not.toContain("wr0ng-pw");
      expect(exportedUrl(up.stdout)).toBeUndefined();
      expect(existsSync(join(cwd, ".loominal"))).toBe(false);
    }
  });

  test("a stale pid file naming a live unrelated process is ignored and that process is left alone", async () => {
    const cwd = project();
    const paths = localNatsPaths(realpathSync(cwd));
    mkdirSync(paths.dir, { recursive: true });
    // This test's own process: alive, but certainly not the project's nats-server.
    writeFileSync(paths.pidFile, `${process.pid}\n`);

    const status = await runCli(["nats", "status"], { cwd });
    expect(status.code).toBe(3);
    const stop = await runCli(["nats", "stop"], { cwd });
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain("not running");
    expect(processAlive(process.pid)).toBe(true);
  });

  test("a bad NATS_URL stops every command with exit code 2 and a message naming NATS_URL", async () => {
    const cwd = project();
    for (const args of [["up"], ["nats", "status"], ["nats", "start"], ["mcp-config"]]) {
      const run = await runCli(args, { cwd, env: { NATS_URL: "http://127.0.0.1:4222" } });
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr).toContain("NATS_URL");
      expect(run.stdout).toBe("");
    }
    expect(existsSync(join(cwd, ".loominal"))).toBe(false);
  });

  test("an invalid .loominal.json stops up with exit code 2 naming the file", async () => {
    const cwd = project();
    writeFileSync(join(cwd, ".loominal.json"), JSON.stringify({ natsUrl: 42 }));
    const run = await runCli(["up"], { cwd });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(".loominal.json");
  });

  test("a missing nats-server binary is exit code 2 with how to install it", async () => {
    const cwd = project();
    const env = {
      NATS_URL: `nats://127.0.0.1:${await freePort()}`,
      NATS_SERVER_BIN: join(cwd, "no-such-binary"),
    };
    const run = await runCli(["up"], { cwd, env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("NATS_SERVER_BIN");
  });
});
