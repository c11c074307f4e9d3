import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeJson, Fabric } from "@loominal/fabric";
import { agentControlReplySchema, randomId, subjects, warpConfigSchema } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { WorkQueue } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDuration, resolveOptions } from "./options.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
let nats: NatsServer;
let fabric: Fabric;
const procs: ChildProcess[] = [];
const dirs: Array<{ cleanup: () => void }> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await fabric?.close();
  await nats?.stop({ removeStore: true });
  for (const d of dirs) d.cleanup();
});

function offerer(projectId: string): WorkQueue {
  return new WorkQueue({
    fabric,
    projectId,
    agentId: randomId(),
    userId: randomId(),
    settings: warpConfigSchema.parse({}).work,
  });
}

function startAgent(projectId: string, args: string[], env: Record<string, string> = {}) {
  const dir = tempDir("agent-");
  dirs.push(dir);
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: dir.path,
    env: { ...process.env, NATS_URL: nats.url, LOOMINAL_PROJECT_ID: projectId, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  procs.push(proc);
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", r));
  return { proc, dir: dir.path, output: () => out, exited };
}

async function agentIdOf(output: () => string): Promise<string> {
  return eventually(
    () => {
      const m = /"agentId":"([0-9a-f]{32})"[^\n]*"msg":"agent registered; claiming work"/.exec(output());
      if (!m?.[1]) throw new Error(`not registered yet:\n${output()}`);
      return m[1];
    },
    { timeoutMs: 30_000 },
  );
}

describe("options", () => {
  it("parses durations and names the flag or variable that is wrong", () => {
    expect(parseDuration("30s", "x")).toBe(30_000);
    expect(parseDuration("10m", "x")).toBe(600_000);
    expect(parseDuration("250ms", "x")).toBe(250);
    expect(() => parseDuration("soon", "--idle-timeout")).toThrow(/--idle-timeout/);
    expect(() => resolveOptions({ command: "true" }, {}, "/")).toThrow(/capability/);
    expect(() => resolveOptions({ capability: ["Bad Cap"], command: "true" }, {}, "/")).toThrow(
      /--capability/,
    );
    const o = resolveOptions(
      { command: "true" },
      { LOOMINAL_CAPABILITY: "ts,go", LOOMINAL_IDLE_TIMEOUT: "2s" },
      "/w",
    );
    expect(o.capabilities).toEqual(["ts", "go"]);
    expect(o.boundaries).toEqual(["default"]);
    expect(o.idleTimeoutMs).toBe(2_000);
  });
});

describe("loominal-agent", () => {
  it("claims an item, runs the command with the item in env and on stdin, and completes it with the output", async () => {
    const p = uniqueProjectId();
    const q = offerer(p);
    const a = startAgent(p, [
      "--capability",
      "typescript",
      "--agent-type",
      "claude-code",
      "--command",
      'echo "desc=$LOOMINAL_WORK_DESCRIPTION cap=$LOOMINAL_WORK_CAPABILITY"; cat',
    ]);
    await agentIdOf(a.output);
    const item = await q.offer({
      taskId: "t1",
      description: "build it",
      capability: "typescript",
      contextData: { k: 1 },
    });
    const done = await eventually(
      async () => {
        const w = await q.get(item.workId);
        if (w?.status !== "completed") throw new Error(`still ${w?.status}`);
        return w;
      },
      { timeoutMs: 20_000 },
    );
    const result = done.result as { exitCode: number; output: string };
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain("desc=build it cap=typescript");
    // stdin carried the item as JSON.
    expect(result.output).toContain(`"workId":"${item.workId}"`);
    a.proc.kill("SIGTERM");
    expect(await a.exited).toBe(0);
  });

  it("fails with exit 75 as retryable and any other code as final", async () => {
    const p = uniqueProjectId();
    const q = offerer(p);
    const a = startAgent(p, [
      "--capability",
      "ops",
      "--max-output",
      "100",
      "--command",
      'if [ "$LOOMINAL_WORK_TASK_ID" = retry ]; then exit 75; fi; head -c 5000 /dev/zero | tr "\\0" x; exit 3',
    ]);
    await agentIdOf(a.output);
    const final = await q.offer({ taskId: "final", description: "d", capability: "ops" });
    const retry = await q.offer({ taskId: "retry", description: "d", capability: "ops" });
    const f = await eventually(
      async () => {
        const w = await q.get(final.workId);
        if (w?.status !== "dead") throw new Error(`final still ${w?.status}`);
        return w;
      },
      { timeoutMs: 20_000 },
    );
    expect(f.lastError?.retryable).toBe(false);
    expect(f.lastError?.reason).toMatch(/code 3/);
    const r = await eventually(
      async () => {
        const w = await q.get(retry.workId);
        if (!w?.lastError) throw new Error("not failed yet");
        return w;
      },
      { timeoutMs: 20_000 },
    );
    expect(r.lastError?.retryable).toBe(true);
    a.proc.kill("SIGTERM");
    await a.exited;
  });

  it("answers ping and shutdown on its control subject and exits", async () => {
    const p = uniqueProjectId();
    const spinUpId = randomId();
    const a = startAgent(p, ["--capability", "docs", "--command", "true"], { LOOMINAL_SPINUP_ID: spinUpId });
    const agentId = await agentIdOf(a.output);
    expect(a.output()).toContain(spinUpId);
    const subject = subjects.agentControl(p, agentId);
    const ping = agentControlReplySchema.parse(
      (await fabric.nc.request(subject, encodeJson({ op: "ping" }), { timeout: 5_000 })).json(),
    );
    expect(ping).toMatchObject({ ok: true, op: "ping", agentId, inFlight: 0 });
    const shut = agentControlReplySchema.parse(
      (
        await fabric.nc.request(subject, encodeJson({ op: "shutdown", reason: "test" }), { timeout: 5_000 })
      ).json(),
    );
    expect(shut).toMatchObject({ ok: true, op: "shutdown" });
    expect(await a.exited).toBe(0);
  });

  it("exits on its own idle timeout", async () => {
    const p = uniqueProjectId();
    const a = startAgent(p, ["--capability", "docs", "--command", "true", "--idle-timeout", "1s"]);
    await agentIdOf(a.output);
    expect(await a.exited).toBe(0);
    expect(a.output()).toMatch(/"reason":"idle"/);
  });
});
