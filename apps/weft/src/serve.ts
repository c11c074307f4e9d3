import type { Server } from "node:http";
import { closeHttpServer, createLogger, Fabric, type Logger } from "@loominal/fabric";
import { resolveTokens, TokenAuthenticator } from "./auth.js";
import { loadWeftConfig, type WeftConfig } from "./config.js";
import { submitFastPath } from "./fast-submit.js";
import { createApp, listen } from "./http.js";
import { remoteMechanisms } from "./mechanisms/index.js";
import { WeftMetrics } from "./metrics.js";
import { serveCoordinatorApi } from "./nats-api.js";
import { SessionSigner } from "./session.js";
import { Weft } from "./weft.js";

export interface RunningWeft {
  weft: Weft;
  server: Server;
  /** The port the REST API listens on. */
  port: number;
  tokenFile: string | undefined;
  stop(): Promise<void>;
}

/** Starts Weft: NATS, the coordinator, the NATS API and the REST API. */
export async function startWeft(
  options: { config?: WeftConfig; logger?: Logger } = {},
): Promise<RunningWeft> {
  const config = options.config ?? loadWeftConfig();
  const logger = options.logger ?? createLogger({ name: "weft", destination: "stdout" });
  const { tokens, tokenFile } = resolveTokens(config.tokens, config.dataDir, logger);
  const fabric = await Fabric.connect({ nats: config.nats, logger, name: `weft ${config.instanceId}` });
  const weft = new Weft({
    config,
    fabric,
    logger,
    metrics: new WeftMetrics(),
    mechanisms: remoteMechanisms({ logger, dataDir: config.dataDir }),
  });
  await weft.start();
  const sub = serveCoordinatorApi(weft, logger);
  const auth = new TokenAuthenticator(tokens);
  const app = createApp(weft, auth, logger, new SessionSigner(tokens));
  const server = await listen(app, config.port, config.host, submitFastPath({ weft, auth, logger }));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  logger.info(
    {
      instance: config.instanceId,
      url: `http://${config.host}:${port}`,
      nats: fabric.url,
      configFile: config.configFile ?? null,
    },
    "weft listening",
  );
  let stopping: Promise<void> | undefined;
  return {
    weft,
    server,
    port,
    tokenFile,
    stop() {
      stopping ??= (async () => {
        await closeHttpServer(server);
        sub.unsubscribe();
        await weft.stop();
        await fabric.close();
      })();
      return stopping;
    },
  };
}
