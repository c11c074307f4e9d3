import { Agent, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pooledRequest, requestsAcrossIdle } from "@loominal/testkit";
import { afterEach, describe, expect, it } from "vitest";
import {
  closeHttpServer,
  createHttpServer,
  HTTP_HEADERS_TIMEOUT_MS,
  HTTP_KEEP_ALIVE_TIMEOUT_MS,
} from "./http-server.js";

const post = (url: string, agent: Agent) =>
  pooledRequest(`${url}/work`, agent, { method: "POST", body: '{"n":1}' });

async function listening(): Promise<{ server: Server; url: string }> {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("createHttpServer", () => {
  it("keeps an idle kept-alive connection past Node's 5 s default: a pooled client reuses the same socket", async () => {
    const { server, url } = await listening();
    cleanups.push(() => closeHttpServer(server));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());

    const [first, second] = await requestsAcrossIdle(`${url}/work`, agent, {
      method: "POST",
      body: '{"n":1}',
    });
    expect(first.status).toBe(200);
    expect(first.reusedSocket).toBe(false);
    expect(first.headers["keep-alive"]).toBe(`timeout=${HTTP_KEEP_ALIVE_TIMEOUT_MS / 1000}`);
    expect(second.status).toBe(200);
    expect(second.reusedSocket).toBe(true);
    expect(second.localPort).toBe(first.localPort);
  });

  it("sets the headers timeout just above the keep-alive timeout", async () => {
    const { server } = await listening();
    cleanups.push(() => closeHttpServer(server));
    expect(server.keepAliveTimeout).toBe(HTTP_KEEP_ALIVE_TIMEOUT_MS);
    expect(server.headersTimeout).toBe(HTTP_HEADERS_TIMEOUT_MS);
    expect(server.headersTimeout).toBeGreaterThan(server.keepAliveTimeout);
  });
});

describe("closeHttpServer", () => {
  // A stop that waited for the idle connection would take HTTP_KEEP_ALIVE_TIMEOUT_MS (65 s): past this
  // test's timeout, so the test fails rather than passes slowly.
  it("stops with an idle kept-alive connection open: it closes that connection", {
    timeout: 30_000,
  }, async () => {
    const { server, url } = await listening();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const answer = await post(url, agent);
    expect(answer.status).toBe(200);
    const clientClosed = new Promise<void>((r) => answer.socket.once("close", () => r()));

    await closeHttpServer(server);
    await clientClosed;
    expect(server.listening).toBe(false);
  });

  it("stops with a response in flight: it ends that connection too", { timeout: 30_000 }, async () => {
    const server = createHttpServer((_req, res) => {
      // A stream that never ends on its own (an SSE follow).
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": open\n\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = new Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const ended = new Promise<void>((resolve) => {
      request(url, { agent }, (res) => {
        res.once("data", () => void closeHttpServer(server));
        res.on("close", () => resolve());
        res.resume();
      })
        .on("error", () => resolve())
        .end();
    });
    await ended;
    await closeHttpServer(server);
    expect(server.listening).toBe(false);
  });

  it("resolves for a server that is not listening", async () => {
    const server = createHttpServer((_req, res) => res.end());
    await closeHttpServer(server);
    expect(server.listening).toBe(false);
  });
});
