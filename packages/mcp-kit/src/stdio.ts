import { GracefulShutdown, type Logger } from "@loominal/fabric";
import { isLoominalError } from "@loominal/protocol";
import type { McpServer } from "@modelcontextprotocol/server";
import { DEFAULT_MAX_MESSAGE_BYTES, LineStdioTransport } from "./stdio-transport.js";

/** Exit code of a server bin that could not start (bad configuration, identity in use, …). */
export const STARTUP_FAILURE_EXIT_CODE = 2;
/** Exit code of a server that stopped because something broke (its transport, or its shutdown). */
export const RUNTIME_FAILURE_EXIT_CODE = 1;

export interface StdioOptions {
  logger: Logger;
  /** Runs once on shutdown (deregister, close NATS); bounded by `shutdownTimeoutMs`. */
  onShutdown?: () => Promise<void>;
  /** The whole shutdown gets this long, then the process exits with code 1. Default 5 s. */
  shutdownTimeoutMs?: number;
  /** Largest single message read from stdin (default 16 MiB); a longer one is answered `invalid_input`. */
  maxMessageBytes?: number;
  /** How the process ends (tests replace it). Default process.exit. */
  exit?: (code: number) => void;
}

/**
 * Serves an MCP server over stdin/stdout until the client goes away (stdin ends) or a signal arrives,
 * then shuts down once with the fabric's `GracefulShutdown`: onShutdown, close the server, exit 0 — or 1
 * when a step failed, the shutdown took too long, or the transport broke (logged as an error). stdout
 * carries only the protocol. Returns the shutdown, for a bin that wants to register more closers.
 */
export async function runStdio(server: McpServer, options: StdioOptions): Promise<GracefulShutdown> {
  const { logger } = options;
  const shutdown = new GracefulShutdown({
    logger,
    timeoutMs: options.shutdownTimeoutMs ?? 5_000,
    ...(options.exit ? { exit: options.exit } : {}),
  }).install();
  shutdown.register("MCP server", () => server.close());
  if (options.onShutdown) shutdown.register("server resources", options.onShutdown);
  const transport = new LineStdioTransport({
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
  });
  let failure: Error | undefined;
  transport.onerror = (err) => {
    failure ??= err;
    logger.error({ err }, "the stdio transport failed");
  };
  transport.onclose = () =>
    void shutdown.shutdown(failure ? "transport failed" : "stdin closed", { failed: failure !== undefined });
  await server.connect(transport);
  logger.info("MCP server ready on stdio");
  return shutdown;
}

/**
 * The one start-up path of the server bins: runs `main`, and when it throws, logs the error (fatal),
 * prints `<name>: <message>` on stderr (what an MCP host shows), flushes the log and exits with
 * `STARTUP_FAILURE_EXIT_CODE`.
 */
export async function runServerMain(
  name: string,
  logger: Logger,
  main: () => Promise<unknown>,
  exit: (code: number) => void = (code) => process.exit(code),
): Promise<void> {
  try {
    await main();
  } catch (err) {
    const message = isLoominalError(err)
      ? `${err.code}: ${err.message}`
      : err instanceof Error
        ? err.message
        : String(err);
    logger.fatal({ err: message }, `${name} could not start`);
    process.stderr.write(`${name}: ${message}\n`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1_000);
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    exit(STARTUP_FAILURE_EXIT_CODE);
  }
}
