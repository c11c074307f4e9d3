import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { closeHttpServer, createHttpServer, createLogger, Fabric, type Logger } from "@loominal/fabric";
import { AgentCatalog } from "./agents.js";
import type { RunnerConfig } from "./env.js";
import { cancelFastPath } from "./fast-cancel.js";
import { createHttpApp } from "./http.js";
import { RunnerMetrics } from "./metrics.js";
import { RunnerService } from "./service.js";

export interface Runner {
  service: RunnerService;
  server: Server;
  fabric: Fabric;
  url: string;
  /** Drain runs, stop the service, close HTTP and NATS. */
  close(): Promise<void>;
}

/** Connects to NATS, starts the replica and its HTTP server. */
export async function startRunner(config: RunnerConfig, logger?: Logger): Promise<Runner> {
  const log = logger ?? createLogger({ name: "loominal-runner", destination: "stdout" });
  const agents = AgentCatalog.load(config.agentsFile);
  const fabric = await Fabric.connect({
    nats: config.nats,
    logger: log,
    name: `loominal-runner ${config.replicaId}`,
  });
  const metrics = new RunnerMetrics();
  const service = new RunnerService({ config, fabric, agents, logger: log, metrics });
  await service.start();
  const app = createHttpApp({
    service,
    authToken: config.authToken,
    keepaliveMs: config.sseKeepaliveMs,
    metrics,
    logger: log,
  });
  // Cancels ahead of express (see fast-cancel.ts); every other request goes to express.
  const fast = cancelFastPath({ service, authToken: config.authToken, logger: log });
  const server = createHttpServer((req, res) => {
    if (!fast(req, res)) app(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  service.setUrl(url);
  log.info({ url, replica: config.replicaId }, "runner listening");
  let closing: Promise<void> | undefined;
  return {
    service,
    server,
    fabric,
    url,
    close() {
      closing ??= (async () => {
        await service.drain();
        await closeHttpServer(server);
        await fabric.close();
      })();
      return closing;
    },
  };
}
