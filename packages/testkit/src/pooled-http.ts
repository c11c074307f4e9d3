import { type Agent, type IncomingMessage, request } from "node:http";
import type { Socket } from "node:net";
import { sleep } from "./helpers.js";

/** Node's own keepAliveTimeout: how long a plain `createServer()` keeps an idle connection (ms). */
export const NODE_DEFAULT_KEEP_ALIVE_MS = 5_000;

/** An answer over a pooled client, with the socket it went over. */
export interface PooledAnswer {
  status: number;
  headers: IncomingMessage["headers"];
  /** Whether the request went over a connection the agent had kept alive from an earlier one. */
  reusedSocket: boolean;
  localPort: number | undefined;
  socket: Socket;
}

/** A request over `agent` (a kept-alive pool, as most HTTP clients use), read to its end. */
export function pooledRequest(
  url: string,
  agent: Agent,
  options: { method?: string; body?: string } = {},
): Promise<PooledAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", agent }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          reusedSocket: req.reusedSocket,
          localPort: req.socket?.localPort,
          socket: req.socket as Socket,
        }),
      );
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/**
 * Two requests over `agent` with an idle gap between them longer than Node's default keep-alive: whether
 * the second went over the first one's socket tells whether the server kept the idle connection.
 */
export async function requestsAcrossIdle(
  url: string,
  agent: Agent,
  options: { method?: string; body?: string } = {},
): Promise<[PooledAnswer, PooledAnswer]> {
  const first = await pooledRequest(url, agent, options);
  await sleep(NODE_DEFAULT_KEEP_ALIVE_MS + 1_000);
  return [first, await pooledRequest(url, agent, options)];
}
