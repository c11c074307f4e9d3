// The ssh mechanism against an in-process ssh2 server, for what sshd cannot be made to do on cue: drop
// the connection in the middle of a command, and show exactly what command line and stdin it was sent.
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { createLogger } from "@loominal/fabric";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { type AuthContext, type Connection, Server, utils } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInProcessWeft } from "../weft.test-helper.js";
import { agentEnv, capturedLogger, targetRecord } from "./mechanisms.test-helper.js";
import { hostKeyFingerprint, SshMechanism } from "./ssh.js";

type Behaviour = "launch" | "drop-after-stdin" | "drop-at-once";

interface Exec {
  command: string;
  stdin: string;
}

/**
 * An ed25519 key pair that ssh2 can read back: now and then ssh2 cannot parse a pair it has just
 * generated, so a pair it cannot read (public or private half) is replaced by a new one.
 */
function readableKeyPair() {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 10; attempt++) {
    const pair = utils.generateKeyPairSync("ed25519");
    const pub = utils.parseKey(pair.public);
    const priv = utils.parseKey(pair.private);
    if (!(pub instanceof Error) && !(priv instanceof Error)) return { ...pair, parsed: pub };
    failures.push([pub, priv].map((k) => (k instanceof Error ? k.message : "ok")).join(" / "));
  }
  throw new Error(`ssh2 could not read any of 10 key pairs it generated: ${failures.join("; ")}`);
}

/** An ssh2 server on loopback that accepts one client key and answers exec requests as told. */
async function fakeSshd() {
  const host = readableKeyPair();
  const clientKeys = readableKeyPair();
  const allowed = clientKeys.parsed;
  const hostKey = host.parsed;
  const execs: Exec[] = [];
  const sockets = new Set<Socket>();
  const state = { behaviour: "launch" as Behaviour };
  const ssh = new Server({ hostKeys: [host.private] }, (conn: Connection) => {
    conn.on("authentication", (ctx: AuthContext) => {
      if (
        ctx.method === "publickey" &&
        ctx.key.algo === allowed.type &&
        ctx.key.data.equals(allowed.getPublicSSH())
      ) {
        if (!ctx.signature || !ctx.blob) return ctx.accept();
        return allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : ctx.reject();
      }
      ctx.reject(["publickey"]);
    });
    conn.on("ready", () => {
      conn.on("session", (acceptSession) => {
        const session = acceptSession();
        session.on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const exec: Exec = { command: info.command, stdin: "" };
          execs.push(exec);
          const socket = [...sockets].at(-1);
          if (state.behaviour === "drop-at-once") return void socket?.destroy();
          stream.on("data", (d: Buffer) => {
            exec.stdin += d.toString("utf8");
          });
          stream.on("end", () => {
            if (state.behaviour === "drop-after-stdin") return void socket?.destroy();
            stream.write("4242\n");
            stream.exit(0);
            stream.end();
          });
        });
      });
    });
    conn.on("error", () => undefined);
  });
  const tcp: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    ssh.injectSocket(socket);
  });
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  return {
    port: (tcp.address() as { port: number }).port,
    fingerprint: hostKeyFingerprint(hostKey.getPublicSSH()),
    privateKey: clientKeys.private,
    execs,
    state,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}

let sshd: Awaited<ReturnType<typeof fakeSshd>>;
let dir: { path: string; cleanup: () => void };

beforeAll(async () => {
  sshd = await fakeSshd();
  dir = tempDir("weft-ssh2-");
});

afterAll(async () => {
  await sshd?.close();
  dir?.cleanup();
});

const SECRET = "nats-password-never-on-a-command-line";

function mechanism() {
  const { logger, lines } = capturedLogger();
  return {
    lines,
    m: new SshMechanism({ logger, dataDir: dir.path, secrets: { AGENT_KEY: sshd.privateKey } }),
  };
}

function config(extra: Record<string, unknown> = {}) {
  return {
    host: "127.0.0.1",
    port: sshd.port,
    username: "agent",
    privateKeyEnv: "AGENT_KEY",
    hostKeySha256: sshd.fingerprint,
    command: "loominal-agent",
    args: ["--", "claude", "-p"],
    env: { NATS_PASSWORD: SECRET },
    timeoutMs: 5_000,
    ...extra,
  };
}

describe("ssh mechanism against an in-process ssh2 server", () => {
  it("sends the agent's env over stdin: the remote command line holds no value of it", async () => {
    sshd.state.behaviour = "launch";
    const { m, lines } = mechanism();
    const target = targetRecord("ssh", m.validateConfig(config()));
    const handle = await m.start({ spinUpId: "sp1", target, env: agentEnv("sp1") });
    expect(handle.pid).toBe(4242);
    const exec = sshd.execs.at(-1);
    expect(exec?.command).toBe("sh -s");
    expect(exec?.stdin).toContain(`export NATS_PASSWORD='${SECRET}'`);
    expect(exec?.stdin).toContain("export LOOMINAL_SPINUP_ID='sp1'");
    expect(exec?.stdin).toMatch(
      /setsid nohup 'loominal-agent' '--' 'claude' '-p' >>"\$log" 2>&1 <\/dev\/null &/,
    );
    for (const e of sshd.execs) expect(e.command).not.toContain(SECRET);
    expect(lines.join("")).not.toContain(SECRET);
  });

  it("reports a connection dropped mid-command as an error, for start, status and stop", async () => {
    const { m, lines } = mechanism();
    const target = targetRecord("ssh", m.validateConfig(config()));
    sshd.state.behaviour = "drop-after-stdin";
    await expect(m.start({ spinUpId: "sp2", target, env: agentEnv("sp2") })).rejects.toMatchObject({
      code: "internal",
      message: expect.stringMatching(/connection closed before the remote command finished/),
    });
    sshd.state.behaviour = "drop-at-once";
    const handle = { pid: 4242, logFile: "x.log", config: target.config };
    await expect(m.status(handle)).rejects.toThrow(/connection closed before the remote command finished/);
    await expect(m.stop(handle, { graceMs: 100 })).rejects.toThrow(
      /connection closed before the remote command finished/,
    );
    expect(lines.join("")).not.toContain(SECRET);
  });

  it("fails the spin-up at once when the connection drops while launching (nothing stays starting)", async () => {
    const nats = await NatsServer.start();
    const logger = createLogger({ name: "ssh2-weft", level: "silent", destination: "stderr" });
    const { weft, stop } = await startInProcessWeft({
      natsUrl: nats.url,
      dir: dir.path,
      defaults: "{ loopIntervalMs: 100, healthCheckIntervalMs: 0 }",
      logger,
      mechanisms: [new SshMechanism({ logger, dataDir: dir.path, secrets: { AGENT_KEY: sshd.privateKey } })],
    });
    try {
      const projectId = uniqueProjectId();
      await weft.createTarget(projectId, {
        name: "box",
        mechanism: "ssh",
        agentType: "claude-code",
        capabilities: ["ts"],
        timeoutMs: 600_000,
        config: config(),
      });
      sshd.state.behaviour = "drop-after-stdin";
      await expect(weft.spinUpTarget(projectId, "box")).rejects.toThrow(
        /ssh mechanism could not start it: the ssh connection closed before the remote command finished/,
      );
      await eventually(async () => {
        const spinUps = await weft.listSpinUps(projectId);
        expect(spinUps).toHaveLength(1);
        expect(spinUps[0]).toMatchObject({
          status: "failed",
          reason: expect.stringContaining("connection closed"),
        });
      });
    } finally {
      await stop();
      await nats.stop({ removeStore: true });
    }
  });
});
