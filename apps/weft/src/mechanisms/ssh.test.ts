import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { eventually, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentEnv, capturedLogger, targetRecord } from "./mechanisms.test-helper.js";
import { SshMechanism } from "./ssh.js";

const SSHD = process.env.SSHD_BIN ?? "/usr/sbin/sshd";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function keygen(file: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  // "256 SHA256:xxxx comment (ED25519)"
  return execFileSync("ssh-keygen", ["-lf", `${file}.pub`], { encoding: "utf8" }).split(" ")[1] ?? "";
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    return String(err);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Debian's sshd on a loopback port with its own host key and one authorized key. */
describe("ssh mechanism against sshd", () => {
  let dir: string;
  let cleanup: () => void = () => undefined;
  let sshd: ChildProcess;
  let port: number;
  let hostFp: string;
  let clientKey: string;
  let otherKey: string;
  const user = userInfo().username;

  beforeAll(async () => {
    if (!existsSync(SSHD))
      throw new Error(
        `${SSHD} not found: install openssh-server (./loominal test does so on Debian as root) or set SSHD_BIN`,
      );
    ({ path: dir, cleanup } = tempDir("weft-ssh-"));
    hostFp = keygen(join(dir, "host_key"));
    clientKey = join(dir, "client_key");
    keygen(clientKey);
    otherKey = join(dir, "other_key");
    keygen(otherKey);
    writeFileSync(join(dir, "authorized_keys"), readFileSync(`${clientKey}.pub`), { mode: 0o600 });
    port = await freePort();
    if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true });
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(dir, "host_key")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        `AllowUsers ${user}`,
      ].join("\n"),
    );
    sshd = spawn(SSHD, ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    sshd.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    await eventually(
      () =>
        new Promise<void>((ok, fail) => {
          if (sshd.exitCode !== null) return fail(new Error(`sshd exited: ${stderr}`));
          const s = connect(port, "127.0.0.1", () => {
            s.end();
            ok();
          });
          s.on("error", fail);
        }),
      { timeoutMs: 20_000 },
    );
  });

  afterAll(() => {
    sshd?.kill("SIGTERM");
    cleanup();
  });

  const config = (extra: Record<string, unknown> = {}) => ({
    host: "127.0.0.1",
    port,
    username: user,
    privateKeyPath: clientKey,
    hostKeySha256: hostFp,
    command: "sh",
    args: ["-c", 'env > "$OUT_DIR/$LOOMINAL_SPINUP_ID.env"; exec sleep 300'],
    env: { OUT_DIR: dir },
    logDir: join(dir, "logs"),
    timeoutMs: 10_000,
    ...extra,
  });

  it("starts a detached agent with the spin-up env, reports it, and stop ends its process group", async () => {
    const { logger, lines } = capturedLogger();
    const m = new SshMechanism({ logger, dataDir: dir, secrets: {} });
    const target = targetRecord("ssh", m.validateConfig(config()));
    expect(await m.test(target)).toMatchObject({ ok: true });
    const handle = await m.start({ spinUpId: "sp1", target, env: agentEnv("sp1") });
    const pid = handle.pid as number;
    expect(pid).toBeGreaterThan(0);
    // The shell's redirect creates the file before `env` fills it: wait for the content.
    await eventually(() =>
      expect(readLog(join(dir, "sp1.env")), readLog(join(dir, "logs", "sp1.log"))).toContain(
        "LOOMINAL_SPINUP_ID=sp1",
      ),
    );
    const env = readFileSync(join(dir, "sp1.env"), "utf8");
    expect(env).toContain("NATS_URL=nats://127.0.0.1:4222");
    // The agent outlived the ssh connection (loopback: the remote pid is visible here).
    expect(alive(pid)).toBe(true);
    expect(await m.status(handle)).toMatchObject({ state: "running" });
    await m.stop(handle, { graceMs: 2_000 });
    await eventually(() => expect(alive(pid)).toBe(false));
    expect(await m.status(handle)).toMatchObject({ state: "gone" });
    await m.stop(handle, { graceMs: 500 });
    expect(lines.join("")).not.toContain("PRIVATE KEY");
  });

  it("reads the private key from an env variable the target names, without echoing it", async () => {
    const key = readFileSync(clientKey, "utf8");
    const m = new SshMechanism({
      logger: capturedLogger().logger,
      dataDir: dir,
      secrets: { AGENT_SSH_KEY: key },
    });
    const target = targetRecord(
      "ssh",
      m.validateConfig(config({ privateKeyPath: undefined, privateKeyEnv: "AGENT_SSH_KEY" })),
    );
    expect(await m.test(target)).toMatchObject({ ok: true });
    const missing = new SshMechanism({ logger: capturedLogger().logger, dataDir: dir, secrets: {} });
    expect((await missing.test(target)).message).toMatch(/AGENT_SSH_KEY is not set/);
  });

  it("refuses a key sshd does not authorize", async () => {
    const m = new SshMechanism({ logger: capturedLogger().logger, dataDir: dir, secrets: {} });
    const target = targetRecord("ssh", m.validateConfig(config({ privateKeyPath: otherKey })));
    await expect(m.start({ spinUpId: "sp2", target, env: agentEnv("sp2") })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(/refused the key.*authorized_keys/),
    });
    expect(await m.test(target)).toMatchObject({ ok: false });
  });

  it("refuses a host key that differs from the pin, and an unpinned one unless acceptNewHostKey, which then records it", async () => {
    const m = new SshMechanism({ logger: capturedLogger().logger, dataDir: join(dir, "data"), secrets: {} });
    const wrongPin = `SHA256:${"A".repeat(43)}`;
    const mismatch = targetRecord("ssh", m.validateConfig(config({ hostKeySha256: wrongPin })));
    await expect(m.start({ spinUpId: "sp3", target: mismatch, env: agentEnv("sp3") })).rejects.toMatchObject({
      code: "forbidden",
      message: expect.stringContaining(`is ${hostFp}, not the pinned ${wrongPin}`),
    });
    const unpinned = targetRecord("ssh", m.validateConfig(config({ hostKeySha256: undefined })));
    expect((await m.test(unpinned)).message).toMatch(/is not pinned: set config.hostKeySha256/);
    const accepting = targetRecord(
      "ssh",
      m.validateConfig(config({ hostKeySha256: undefined, acceptNewHostKey: true })),
    );
    expect(await m.test(accepting)).toMatchObject({ ok: true });
    const known = JSON.parse(readFileSync(join(dir, "data", "ssh-known-hosts.json"), "utf8"));
    expect(known[`127.0.0.1:${port}`]).toBe(hostFp);
    // A different recorded key (the host "changed") is refused even with acceptNewHostKey.
    writeFileSync(
      join(dir, "data", "ssh-known-hosts.json"),
      JSON.stringify({ [`127.0.0.1:${port}`]: wrongPin }),
    );
    expect((await m.test(accepting)).message).toMatch(/not the recorded/);
  });

  it("reports an unreachable host and a server that never completes the handshake", async () => {
    const m = new SshMechanism({ logger: capturedLogger().logger, dataDir: dir, secrets: {} });
    const closedPort = await freePort();
    const unreachable = targetRecord("ssh", m.validateConfig(config({ port: closedPort })));
    expect((await m.test(unreachable)).message).toMatch(/could not be reached.*ECONNREFUSED/);
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const silentPort = (silent.address() as { port: number }).port;
      const hanging = targetRecord("ssh", m.validateConfig(config({ port: silentPort, timeoutMs: 500 })));
      await expect(m.start({ spinUpId: "sp4", target: hanging, env: agentEnv("sp4") })).rejects.toMatchObject(
        {
          code: "timeout",
        },
      );
    } finally {
      silent.close();
    }
  });

  it("names what is wrong in a config", () => {
    const m = new SshMechanism({ logger: capturedLogger().logger, dataDir: dir, secrets: {} });
    expect(() => m.validateConfig({ ...config(), privateKeyEnv: "K" })).toThrow(
      /exactly one of privateKeyPath/,
    );
    expect(() => m.validateConfig({ ...config(), hostKeySha256: "nope" })).toThrow(/config.hostKeySha256/);
  });
});
