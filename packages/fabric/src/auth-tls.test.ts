import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, NatsServer, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsSettingsFromEnv } from "./config.js";
import { Fabric } from "./connection.js";
import { NatsAuthError } from "./errors.js";

const PASSWORD = "p@ss/w:rd";
const dir = tempDir("loom-auth-");
afterAll(() => dir.cleanup());

/** Connects with settings read from `env` exactly as a Loominal process would. */
async function connectWith(env: Record<string, string>): Promise<Fabric> {
  return Fabric.connect({ nats: natsSettingsFromEnv(env) });
}

async function failureOf(env: Record<string, string>): Promise<Error> {
  const err = await connectWith(env).then(
    async (f) => {
      await f.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error("connected, but should not have");
  return err;
}

describe("a server that requires a user and password", () => {
  let server: NatsServer;
  beforeAll(async () => {
    const configFile = join(dir.path, "auth.json");
    writeFileSync(
      configFile,
      JSON.stringify({ authorization: { users: [{ user: "alice", password: PASSWORD }] } }),
    );
    server = await NatsServer.start({ configFile });
  });
  afterAll(() => server?.stop());

  it.each([
    ["raw in the URL", () => ({ NATS_URL: `nats://alice:${PASSWORD}@127.0.0.1:${server.port}` })],
    [
      "percent-encoded in the URL",
      () => ({ NATS_URL: `nats://alice:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}` }),
    ],
    [
      "in NATS_USER / NATS_PASSWORD",
      () => ({ NATS_URL: server.url, NATS_USER: "alice", NATS_PASSWORD: PASSWORD }),
    ],
  ])("accepts the credentials %s and never shows them", async (_, env) => {
    const f = await connectWith(env());
    try {
      expect(f.url).toBe(server.url);
      expect(await (await f.jsm()).getAccountInfo()).toBeDefined();
    } finally {
      await f.close();
    }
  });

  it("reports wrong or missing credentials as refused, not as unreachable", async () => {
    for (const env of [
      { NATS_URL: `nats://alice:wrong-pw@127.0.0.1:${server.port}` },
      { NATS_URL: server.url },
    ]) {
      const err = await failureOf(env);
      expect(err).toBeInstanceOf(NatsAuthError);
      expect((err as NatsAuthError).code).toBe("forbidden");
      expect(err.message).toMatch(/refused the connection \(.*Authorization Violation.*\)/i);
      expect(err.message).not.toContain("wrong-pw");
      expect(err.message).not.toMatch(/unreachable/);
    }
  });
});

describe("a background connection refused by the server", () => {
  let server: NatsServer;
  beforeAll(async () => {
    const configFile = join(dir.path, "auth-bg.json");
    writeFileSync(
      configFile,
      JSON.stringify({ authorization: { users: [{ user: "bob", password: "right" }] } }),
    );
    server = await NatsServer.start({ configFile, jetstream: false });
  });
  afterAll(() => server?.stop());

  it("says the credentials were refused, without the password", async () => {
    const f = Fabric.start({
      nats: natsSettingsFromEnv({ NATS_URL: `nats://bob:wr0ng@127.0.0.1:${server.port}` }),
      reconnectDelayMs: 50,
    });
    try {
      const message = await eventually(() => {
        const m = f.unavailable().message;
        expect(m).toMatch(/refused the credentials \(.*Authorization Violation.*\)/i);
        return m;
      });
      expect(message).not.toContain("wr0ng");
      expect(f.isConnected).toBe(false);
    } finally {
      await f.close();
    }
  });
});

describe("a server that requires a token", () => {
  let server: NatsServer;
  beforeAll(async () => {
    const configFile = join(dir.path, "token.json");
    writeFileSync(configFile, JSON.stringify({ authorization: { token: "s3cr3t-t0k3n" } }));
    server = await NatsServer.start({ configFile });
  });
  afterAll(() => server?.stop());

  it("accepts nats://token@host", async () => {
    const f = await connectWith({ NATS_URL: `nats://s3cr3t-t0k3n@127.0.0.1:${server.port}` });
    await f.close();
    expect(await failureOf({ NATS_URL: `nats://other@127.0.0.1:${server.port}` })).toBeInstanceOf(
      NatsAuthError,
    );
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A throwaway CA and a server certificate for 127.0.0.1, made with openssl. */
function makeCertificates(): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir.path, f);
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  run(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=loom-test-ca"].concat([
      "-keyout",
      p("ca.key"),
      "-out",
      p("ca.pem"),
    ]),
  );
  run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    p("server.key"),
    "-out",
    p("server.csr"),
  ]);
  writeFileSync(p("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run([
    "x509",
    "-req",
    "-days",
    "1",
    "-in",
    p("server.csr"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-extfile",
    p("san.ext"),
    "-out",
    p("server.pem"),
  ]);
  return { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key") };
}

describe("tls:// URLs", () => {
  let plain: NatsServer;
  beforeAll(async () => {
    plain = await NatsServer.start({ jetstream: false });
  });
  afterAll(() => plain?.stop());

  it("refuse a server without TLS instead of talking to it in plain text", async () => {
    const err = await failureOf({ NATS_URL: `tls://127.0.0.1:${plain.port}` });
    expect(err.message).toMatch(/tls/i);
  });

  it.skipIf(!hasOpenssl())("connect over TLS to a server with a certificate from NATS_TLS_CA", async () => {
    const { ca, cert, key } = makeCertificates();
    const server = await NatsServer.start({
      jetstream: false,
      args: ["--tls", "--tlscert", cert, "--tlskey", key],
    });
    try {
      const f = await connectWith({ NATS_URL: `tls://127.0.0.1:${server.port}`, NATS_TLS_CA: ca });
      try {
        expect(f.nc.info?.tls_required).toBe(true);
        await f.nc.flush();
      } finally {
        await f.close();
      }
      // Without the CA the server's certificate is not trusted: an error, never a plain-text fallback.
      await expect(connectWith({ NATS_URL: `tls://127.0.0.1:${server.port}` })).rejects.toThrow();
    } finally {
      await server.stop();
    }
  });
});
