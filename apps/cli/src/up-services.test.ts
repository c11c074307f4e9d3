import { spawn } from "node:child_process";
import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "@loominal/fabric";
import { eventually, freePort, NatsServer, spawnStdio, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI_BIN, runCli } from "./cli.test-helper.js";
import { LocalNats } from "./local-nats.js";
import { binPath, buildMcpConfig, workspaceRoot } from "./mcp-config.js";
import { probeNats } from "./probe.js";
import { stackPaths } from "./stack.js";

interface State {
  up?: { pid: number };
  nats: { url: string; started?: { pid: number } };
  weft?: { pid: number; url: string };
  runner?: { pid: number; url: string };
  tokenFile: string;
}

interface StatusJson {
  healthy: boolean;
  projectId: string;
  nats: { healthy: boolean; startedByUp: boolean };
  weft: { healthy: boolean; problem?: string };
  runner: { healthy: boolean; problem?: string };
  agents?: { online: number; busy: number };
  work?: { queued: number };
}

const projects: Array<{ path: string; cleanup: () => void }> = [];
let external: NatsServer;

/** A temp project; afterAll runs `down` there and stops any local server, whatever a test left. */
function project(): string {
  const dir = tempDir("loom-up-");
  projects.push(dir);
  return dir.path;
}

/** Ports 0: never the machine's own NATS, Weft or Runner. */
const UP = ["up", "--weft-port", "0", "--runner-port", "0"];

function readState(cwd: string): State {
  return JSON.parse(readFileSync(stackPaths(realpathSync(cwd)).stateFile, "utf8")) as State;
}

function pidsOf(state: State): number[] {
  return [state.nats.started?.pid, state.weft?.pid, state.runner?.pid, state.up?.pid].filter(
    (p): p is number => p !== undefined,
  );
}

async function status(
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number | null; json: StatusJson }> {
  const run = await runCli(["status", "--json"], { cwd, env });
  return { code: run.code, json: JSON.parse(run.stdout) as StatusJson };
}

beforeAll(async () => {
  external = await NatsServer.start();
});

afterAll(async () => {
  for (const p of projects) {
    await runCli(["down"], { cwd: p.path }).catch(() => undefined);
    await new LocalNats(realpathSync(p.path)).stop({ timeoutMs: 5_000 }).catch(() => undefined);
    p.cleanup();
  }
  await external?.stop();
});

/**
 * Each test runs a dozen CLI processes and three services; on a loaded machine that takes minutes, so the
 * limit is generous (it bounds a hang, it measures nothing).
 */
const SLOW = 240_000;

describe("loominal up --detach, status, down", () => {
  test(
    "starts NATS, Weft and a Runner; status sees agents and work; down leaves no process behind",
    async () => {
      const cwd = project();
      const env = { NATS_URL: `nats://127.0.0.1:${await freePort()}` };

      const up = await runCli([...UP, "--detach"], { cwd, env });
      expect(up.stderr).toBe("");
      expect(up.code).toBe(0);
      const state = readState(cwd);
      expect(state.up).toBeUndefined();
      expect(state.nats.started?.pid).toBeGreaterThan(0);
      const weft = state.weft?.url ?? "";
      const runner = state.runner?.url ?? "";
      expect(weft).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(runner).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      for (const pid of pidsOf(state)) expect(processAlive(pid), `pid ${pid}`).toBe(true);

      // Where everything is and what to do next, but not the token itself.
      const tokenFile = join(realpathSync(cwd), ".loominal", "weft-token");
      expect(state.tokenFile).toBe(tokenFile);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const token = readFileSync(tokenFile, "utf8").trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(up.stdout).not.toContain(token);
      expect(up.stdout).toContain(`Weft       ${weft}`);
      expect(up.stdout).toContain(`Runner     ${runner}`);
      expect(up.stdout).toContain(`Dashboard  ${weft}/ui`);
      expect(up.stdout).toContain(`API token  ${tokenFile}`);
      expect(up.stdout).toContain("mcp-config --write");
      expect(up.stdout).toContain("down");

      // Both services answer, and both want the token.
      expect((await fetch(`${weft}/health`)).status).toBe(200);
      expect((await fetch(`${weft}/api/stats`)).status).toBe(401);
      expect((await fetch(`${runner}/healthz`)).status).toBe(200);
      expect((await fetch(`${runner}/v1/users/alice/runs`)).status).toBe(401);
      const auth = { authorization: `Bearer ${token}` };
      expect((await fetch(`${runner}/v1/users/alice/runs`, { headers: auth })).status).toBe(200);
      // The dashboard up points at: a login page without the token, the page with it.
      const login = await fetch(`${weft}/ui`);
      expect(login.status).toBe(401);
      expect(await login.text()).toContain('name="token"');
      expect((await fetch(`${weft}/ui`, { headers: auth })).status).toBe(200);

      // A second up is refused while this one runs.
      const second = await runCli([...UP, "--detach"], { cwd, env });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain("'up' already runs for this project");

      const healthy = await status(cwd, env);
      expect(healthy.code).toBe(0);
      expect(healthy.json).toMatchObject({
        healthy: true,
        nats: { healthy: true, startedByUp: true },
        weft: { healthy: true },
        runner: { healthy: true },
        agents: { online: 0 },
        work: { queued: 0 },
      });
      const text = await runCli(["status"], { cwd, env });
      expect(text.code).toBe(0);
      expect(text.stdout).toContain("Everything 'up' runs is healthy.");

      // An agent online and a queued work item show up in status; `work submit` finds up's Weft, its token
      // and this directory's project by itself.
      const warp = buildMcpConfig({}).config.mcpServers["loominal-warp"];
      const agent = await spawnStdio({
        command: warp.command,
        args: warp.args,
        env: { NATS_URL: state.nats.url },
        cwd,
      });
      try {
        const registered = await agent.call("warp_registry_register", {
          agentType: "claude-code",
          capabilities: ["typescript"],
        });
        expect(registered.isError).toBe(false);
        const submit = await runCli(
          [
            "work",
            "submit",
            "--capability",
            "docs",
            "--description",
            "write the getting-started guide",
            "--json",
          ],
          { cwd, env },
        );
        expect(submit.stderr).toBe("");
        expect(submit.code).toBe(0);
        await eventually(
          async () => {
            const s = await status(cwd, env);
            expect(s.json.agents?.online).toBe(1);
            expect(s.json.work?.queued).toBe(1);
          },
          { timeoutMs: 60_000 },
        );
      } finally {
        await agent.close();
      }

      const down = await runCli(["down"], { cwd, env });
      expect(down.stderr).toBe("");
      expect(down.code).toBe(0);
      expect(down.stdout).toContain(`Stopped Runner (pid ${state.runner?.pid})`);
      expect(down.stdout).toContain(`Stopped Weft (pid ${state.weft?.pid})`);
      expect(down.stdout).toContain(`Stopped nats-server (pid ${state.nats.started?.pid})`);
      for (const pid of pidsOf(state))
        await eventually(() => expect(processAlive(pid), `pid ${pid}`).toBe(false));
      expect(existsSync(stackPaths(realpathSync(cwd)).stateFile)).toBe(false);

      const after = await status(cwd, env);
      expect(after.code).toBe(3);
      expect((await runCli(["down"], { cwd, env })).stdout).toContain("nothing to stop");
    },
    SLOW,
  );

  test(
    "with an external NATS it starts no nats-server; status fails when a service dies; down leaves NATS alone",
    async () => {
      const cwd = project();
      const env = { NATS_URL: external.url };
      const up = await runCli([...UP, "--detach"], { cwd, env });
      expect(up.stderr).toBe("");
      expect(up.code).toBe(0);
      expect(up.stdout).toContain(`Using NATS at ${external.url}`);
      const state = readState(cwd);
      expect(state.nats).toEqual({ url: external.url });
      expect(existsSync(join(cwd, ".loominal", "nats"))).toBe(false);
      expect((await status(cwd, env)).json).toMatchObject({ healthy: true, nats: { startedByUp: false } });

      process.kill(state.runner?.pid ?? 0, "SIGKILL");
      await eventually(() => expect(processAlive(state.runner?.pid ?? 0)).toBe(false));
      const broken = await status(cwd, env);
      expect(broken.code).toBe(1);
      expect(broken.json.healthy).toBe(false);
      expect(broken.json.weft.healthy).toBe(true);
      expect(broken.json.runner.problem).toContain("is gone");

      const down = await runCli(["down"], { cwd, env });
      expect(down.code).toBe(0);
      expect(down.stdout).toContain("was not running");
      expect(down.stdout).toContain(`Left NATS at ${external.url} running`);
      await eventually(() => expect(processAlive(state.weft?.pid ?? 0)).toBe(false));
      // The external server still serves.
      expect((await probeNats({ servers: [external.url] })).kind).toBe("ready");
    },
    SLOW,
  );

  test(
    "down never signals a process that is not the one recorded",
    async () => {
      const cwd = project();
      const paths = stackPaths(realpathSync(cwd));
      const up = await runCli([...UP, "--detach"], { cwd, env: { NATS_URL: external.url } });
      expect(up.code).toBe(0);
      const state = readState(cwd);
      // Point the Weft record at this test process: alive, but not a Weft (nor started when recorded).
      const forged = { ...state, weft: { ...state.weft, pid: process.pid } };
      writeFileSync(paths.stateFile, JSON.stringify(forged));
      const down = await runCli(["down"], { cwd });
      expect(down.code).toBe(0);
      expect(down.stdout).toContain(`Weft (pid ${process.pid}) was not running`);
      expect(processAlive(process.pid)).toBe(true);
      await eventually(() => expect(processAlive(state.runner?.pid ?? 0)).toBe(false));
      // The real Weft was not recorded any more: stop it as its owner would.
      process.kill(state.weft?.pid ?? 0, "SIGTERM");
      await eventually(() => expect(processAlive(state.weft?.pid ?? 0)).toBe(false));
    },
    SLOW,
  );
});

describe("the walkthrough: work submitted to up's Weft", () => {
  test(
    "starts loominal-agent on a local target, which completes the item; down stops that agent too",
    async () => {
      const cwd = project();
      const env = { NATS_URL: external.url };
      expect((await runCli([...UP, "--detach"], { cwd, env })).code).toBe(0);

      const agentBin = binPath(join(workspaceRoot(), "apps/agent"), "loominal-agent");
      const target = await runCli(
        [
          "targets",
          "add",
          "echo-agent",
          "--agent-type",
          "custom",
          "--capability",
          "docs",
          "--command",
          process.execPath,
          "--arg",
          agentBin,
          "--arg",
          "--command",
          "--arg",
          'echo "done: $LOOMINAL_WORK_DESCRIPTION"',
        ],
        { cwd, env },
      );
      expect(target.stderr).toBe("");
      expect(target.code).toBe(0);

      const submit = await runCli(
        ["work", "submit", "--capability", "docs", "--description", "write the intro", "--json"],
        { cwd, env },
      );
      expect(submit.code).toBe(0);
      const { workId, spinUp } = JSON.parse(submit.stdout) as {
        workId: string;
        spinUp: { spinUpId: string } | null;
      };
      expect(spinUp?.spinUpId).toMatch(/^[0-9a-f]{32}$/);

      const done = await eventually(
        async () => {
          const get = await runCli(["work", "get", workId, "--json"], { cwd, env });
          const item = JSON.parse(get.stdout) as { status: string; result?: { output?: string } };
          expect(item.status).toBe("completed");
          return item;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      expect(done.result?.output).toBe("done: write the intro\n");

      const agents = await runCli(["agents", "ls", "--json"], { cwd, env });
      const listed = JSON.parse(agents.stdout) as { agents: Array<{ pid: number; spinUpId?: string }> };
      const spun = listed.agents.find((a) => a.spinUpId === spinUp?.spinUpId);
      expect(spun?.pid).toBeGreaterThan(0);
      expect(processAlive(spun?.pid ?? 0)).toBe(true);

      const down = await runCli(["down"], { cwd, env });
      expect(down.stderr).toBe("");
      expect(down.code).toBe(0);
      expect(down.stdout).toContain("Asked 1 agent Weft started to shut down");
      await eventually(() => expect(processAlive(spun?.pid ?? 0)).toBe(false), { timeoutMs: 60_000 });
    },
    SLOW,
  );
});

describe("loominal up in the foreground", () => {
  test(
    "Ctrl-C (SIGINT) stops everything it started",
    async () => {
      const cwd = project();
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (v !== undefined && !k.startsWith("NATS_") && !k.startsWith("LOOMINAL_")) env[k] = v;
      }
      env.NATS_URL = `nats://127.0.0.1:${await freePort()}`;
      const child = spawn(process.execPath, [CLI_BIN, ...UP], { cwd, env, stdio: "pipe" });
      let stdout = "";
      child.stdout.on("data", (b: Buffer) => {
        stdout += b.toString();
      });
      child.stderr.on("data", (b: Buffer) => {
        stdout += b.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      try {
        await eventually(() => expect(stdout).toContain("Ctrl-C stops what up started"), {
          timeoutMs: 180_000,
        });
        const state = readState(cwd);
        expect(state.up?.pid).toBe(child.pid);
        const pids = pidsOf(state).filter((p) => p !== child.pid);
        expect(pids).toHaveLength(3);
        for (const pid of pids) expect(processAlive(pid)).toBe(true);

        child.kill("SIGINT");
        expect(await exited).toBe(0);
        expect(stdout).toContain("SIGINT: stopping");
        for (const pid of pids) await eventually(() => expect(processAlive(pid), `pid ${pid}`).toBe(false));
        expect(existsSync(stackPaths(realpathSync(cwd)).stateFile)).toBe(false);
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    },
    SLOW,
  );
});
