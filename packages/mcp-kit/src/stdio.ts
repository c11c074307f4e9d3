import type { Logger } from "@loominal/fabric";
import type { McpServer } from "@modelcontextprotocol/server";
import { StdioServerTransport } from "@modelcontextprotocol/server/stdio";

export interface StdioOptions {
  logger: Logger;
  /** Runs once on shutdown (deregister, close NATS); bounded by `shutdownTimeoutMs`. */
  onShutdown?: () => Promise<void>;
  shutdownTimeoutMs?: number;
}

/**
 * Serves an MCP server over stdin/stdout until the client goes away (stdin ends) or a signal arrives,
 * then shuts down once: onShutdown, close the transport, exit 0. stdout carries only the protocol.
 */
export async function runStdio(server: McpServer, options: StdioOptions): Promise<void> {
  const transport = new StdioServerTransport();
  let stopping = false;
  const shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    options.logger.info({ reason }, "shutting down");
    const timeout = options.shutdownTimeoutMs ?? 5_000;
    const timer = setTimeout(() => {
      options.logger.warn({ timeoutMs: timeout }, "shutdown took too long; exiting");
      process.exit(1);
    }, timeout);
    timer.unref();
    try {
      await options.onShutdown?.();
    } catch (err) {
      options.logger.error({ err: String(err) }, "error during shutdown");
    }
    await server.close().catch(() => undefined);
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.stdin.once("end", () => void shutdown("stdin closed"));
  process.stdin.once("close", () => void shutdown("stdin closed"));
  transport.onclose = () => void shutdown("transport closed");
  await server.connect(transport);
  options.logger.info("MCP server ready on stdio");
}
