import { LoominalError } from "@loominal/protocol";
import { NatsServer } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import { isUnavailableError, NatsAuthError, NatsUnavailableError } from "./errors.js";
import { ensureBucket } from "./streams.js";

const servers: NatsServer[] = [];
const fabrics: Fabric[] = [];

async function serve(options: { jetstream?: boolean } = {}): Promise<NatsServer> {
  const s = await NatsServer.start(options);
  servers.push(s);
  return s;
}

async function open(url: string): Promise<Fabric> {
  const f = await Fabric.connect({
    nats: { servers: [url] },
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 250,
    requestTimeoutMs: 1_000,
  });
  fabrics.push(f);
  return f;
}

/** What an operation rejected with. */
async function failure(op: () => Promise<unknown>): Promise<unknown> {
  try {
    await op();
  } catch (err) {
    return err;
  }
  throw new Error("the operation succeeded; a failure was expected");
}

afterAll(async () => {
  await Promise.all(fabrics.map((f) => f.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

describe("isUnavailableError: one classifier for 'NATS is not there'", () => {
  it("a flush cut by the server going away ('connection disconnected') is an outage", async () => {
    const s = await serve();
    const f = await open(s.url);
    await s.kill();
    const err = await failure(() => f.nc.flush());
    expect(isUnavailableError(err)).toBe(true);
    const mapped = f.mapError(err);
    expect(mapped).toBeInstanceOf(NatsUnavailableError);
    expect((mapped as NatsUnavailableError).code).toBe("nats_unavailable");
    expect((mapped as Error).message).toContain("./loominal up");
  });

  it("a JetStream request that no JetStream answers is an outage, and says what to do", async () => {
    const s = await serve({ jetstream: false });
    const f = await open(s.url);
    const err = await failure(() => ensureBucket(f, { name: "nothing-here" }));
    expect(isUnavailableError(err)).toBe(true);
    const mapped = f.mapError(err) as Error;
    expect(mapped).toBeInstanceOf(NatsUnavailableError);
    expect(mapped.message).toMatch(/JetStream did not answer.*-js/);
  });

  it("a request on a closed connection is an outage", async () => {
    const s = await serve();
    const f = await open(s.url);
    const nc = f.nc;
    await f.close();
    const err = await failure(() => nc.request("nobody.home", "x", { timeout: 200 }));
    expect(isUnavailableError(err)).toBe(true);
  });

  it("a request nobody answers is an outage; refused credentials and other errors are not", async () => {
    const s = await serve();
    const f = await open(s.url);
    const err = await failure(() => f.nc.request("nobody.home", "x", { timeout: 500 }));
    expect(isUnavailableError(err)).toBe(true);
    expect(isUnavailableError(new NatsAuthError(s.url, "authorization violation"))).toBe(false);
    expect(isUnavailableError(new LoominalError("not_found", "no such key"))).toBe(false);
    expect(isUnavailableError(new LoominalError("nats_unavailable", "a view stopped"))).toBe(true);
    expect(isUnavailableError(new Error("something else"))).toBe(false);
  });
});
