import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runCli } from "./cli.test-helper.js";

const WEFT_BIN = fileURLToPath(new URL("../../weft/dist/bin.js", import.meta.url));
const TOKEN = "cli-test-admin-token-0123456789";
let nats: NatsServer;
let weft: ChildProcess;
let url = "";
const dir = tempDir("cli-weft-");

beforeAll(async () => {
  nats = await NatsServer.start();
  weft = spawn(process.execPath, [WEFT_BIN, "serve"], {
    cwd: dir.path,
    env: { ...process.env, NATS_URL: nats.url, WEFT_PORT: "0", WEFT_API_TOKENS: TOKEN },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weft did not start: ${out}`)), 30_000);
    weft.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"weft listening"/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
});

afterAll(async () => {
  if (weft && weft.exitCode === null) {
    weft.kill("SIGTERM");
    await new Promise((r) => weft.once("exit", r));
  }
  await nats?.stop({ removeStore: true });
  dir.cleanup();
});

describe("loominal work / targets / agents / stats", () => {
  test("submit, list, get and cancel work; add, list and remove a target; agents and stats", async () => {
    const p = uniqueProjectId();
    const env = { WEFT_URL: url, WEFT_TOKEN: TOKEN, LOOMINAL_PROJECT_ID: p };
    const sub = await runCli(
      ["work", "submit", "--capability", "typescript", "--description", "from the cli", "--json"],
      { cwd: dir.path, env },
    );
    expect(sub.code, sub.stderr).toBe(0);
    const workId = JSON.parse(sub.stdout).workId as string;
    const ls = await runCli(["work", "ls"], { cwd: dir.path, env });
    expect(ls.stdout).toMatch(/^workId\s+status/);
    expect(ls.stdout).toContain(workId);
    const get = await runCli(["work", "get", workId, "--json"], { cwd: dir.path, env });
    expect(JSON.parse(get.stdout).description).toBe("from the cli");
    const cancel = await runCli(["work", "cancel", workId], { cwd: dir.path, env });
    expect(cancel.stdout).toContain("cancelled");
    const again = await runCli(["work", "cancel", workId], { cwd: dir.path, env });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/Weft answered 409/);

    const add = await runCli(
      [
        "targets",
        "add",
        "builder",
        "--agent-type",
        "claude-code",
        "--capability",
        "typescript",
        "--command",
        "/bin/true",
      ],
      { cwd: dir.path, env },
    );
    expect(add.code, add.stderr).toBe(0);
    expect((await runCli(["targets", "ls"], { cwd: dir.path, env })).stdout).toContain("builder");
    const test = await runCli(["targets", "test", "builder", "--json"], { cwd: dir.path, env });
    expect(JSON.parse(test.stdout).ok).toBe(true);
    expect(
      (await runCli(["targets", "disable", "builder", "--json"], { cwd: dir.path, env })).stdout,
    ).toContain('"enabled": false');
    expect((await runCli(["targets", "rm", "builder"], { cwd: dir.path, env })).code).toBe(0);

    expect((await runCli(["agents", "ls"], { cwd: dir.path, env })).stdout).toBe("(none)\n");
    const stats = await runCli(["stats", "--json"], { cwd: dir.path, env });
    expect(JSON.parse(stats.stdout).projectId).toBe(p);
    // A dozen CLI processes in sequence: bound a hang, not their speed on a loaded machine.
  }, 240_000);

  test("exits non-zero with the server's message on a wrong token or no token", async () => {
    const p = uniqueProjectId();
    const wrong = await runCli(["work", "ls"], {
      cwd: dir.path,
      env: { WEFT_URL: url, WEFT_TOKEN: "nope-nope-nope-nope-nope", LOOMINAL_PROJECT_ID: p },
    });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/401.*bearer token/);
    const none = await runCli(["work", "ls"], {
      cwd: dir.path,
      env: { WEFT_URL: url, LOOMINAL_PROJECT_ID: p },
    });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/WEFT_TOKEN/);
  });
});
