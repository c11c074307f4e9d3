// Shared by the mechanism tests: a captured logger, a target record, a local HTTP server that records requests.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, type Logger } from "@loominal/fabric";
import type { SpinUpMechanism, TargetRecord } from "@loominal/protocol";

export function capturedLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    name: "weft-test",
    level: "debug",
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { logger, lines };
}

export function targetRecord(mechanism: SpinUpMechanism, config: Record<string, unknown>): TargetRecord {
  const now = new Date().toISOString();
  return {
    targetId: "0123456789abcdef0123456789abcdef",
    projectId: "proj1",
    name: `t-${mechanism}`,
    mechanism,
    agentType: "claude-code",
    capabilities: ["ts"],
    boundaries: [],
    config,
    enabled: true,
    maxConcurrent: 2,
    cooldownMs: 0,
    idleTimeoutMs: 60_000,
    timeoutMs: 30_000,
    health: { status: "unknown" },
    useCount: 0,
    createdAt: now,
    updatedAt: now,
  };
}

export const agentEnv = (spinUpId: string): Record<string, string> => ({
  LOOMINAL_SPINUP_ID: spinUpId,
  LOOMINAL_TARGET_ID: "0123456789abcdef0123456789abcdef",
  LOOMINAL_PROJECT_ID: "proj1",
  NATS_URL: "nats://127.0.0.1:4222",
});

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export type Route = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

/** A loopback HTTP server answering with `route`, recording every request. */
export async function httpPeer(
  route: Route,
): Promise<{ url: string; requests: RecordedRequest[]; server: Server; close(): Promise<void> }> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r: RecordedRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(r);
      Promise.resolve(route(r, res)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(body));
}
