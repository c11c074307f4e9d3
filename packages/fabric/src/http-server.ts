import { createServer, type RequestListener, type Server } from "node:http";

/**
 * How long (ms) the REST servers keep an idle kept-alive connection open: longer than common pooled
 * clients and proxies keep one (load balancers 60 s, undici 4 s), so that the client, not the server,
 * ends it. A server that closes an idle connection at the moment a client reuses it gets that client a
 * reset (ECONNRESET), and a POST that got one may or may not have been processed. Node's default is
 * 5 s. Clients see it as `Keep-Alive: timeout=65`; a node:http agent without a `timeout` of its own
 * keeps a socket until the server ends it, so its resets become rarer, not impossible, past 65 s.
 */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 65_000;

/**
 * How long (ms) a request's headers may take to arrive: just above HTTP_KEEP_ALIVE_TIMEOUT_MS, so that
 * a connection is ended for being idle, never for headers that a client reusing it is about to send.
 */
export const HTTP_HEADERS_TIMEOUT_MS = 66_000;

/** A node:http server with the keep-alive and headers timeouts above. */
export function createHttpServer(listener: RequestListener): Server {
  const server = createServer(listener);
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS;
  return server;
}

/**
 * Stops a server without waiting for its clients: it stops listening and ends every connection, the
 * idle kept-alive ones (which would otherwise stay for HTTP_KEEP_ALIVE_TIMEOUT_MS) and those with a
 * request or stream in flight. Resolves once the server is closed (also when it was not listening).
 */
export function closeHttpServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
