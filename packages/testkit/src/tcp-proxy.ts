import { createConnection, createServer, type Server, type Socket } from "node:net";

interface ProxyState {
  cut: boolean;
  /** While down, connections are closed and new ones refused (the client sees a disconnect). */
  down: boolean;
  pairs: Set<Pair>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Chunks that arrived while cut, with the socket each was bound for. */
  held: Array<[Socket, Buffer]>;
}

/**
 * A TCP proxy on loopback in front of a server, to cut one client off from it while everyone else keeps
 * talking to the server directly. `cut()` stops forwarding in both directions without closing anything
 * (a partition: the client sees silence, not an error); `restore()` delivers what was held back.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #state: ProxyState;

  private constructor(server: Server, state: ProxyState) {
    this.#server = server;
    this.#state = state;
  }

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
    const state: ProxyState = { cut: false, down: false, pairs: new Set() };
    const server = createServer((client) => {
      if (state.down) {
        client.destroy();
        return;
      }
      const upstream = createConnection({ host: targetHost, port: targetPort });
      const pair: Pair = { client, upstream, held: [] };
      state.pairs.add(pair);
      const forward = (to: Socket) => (chunk: Buffer) => {
        if (state.cut) pair.held.push([to, chunk]);
        else to.write(chunk);
      };
      client.on("data", forward(upstream));
      upstream.on("data", forward(client));
      const end = () => {
        client.destroy();
        upstream.destroy();
        state.pairs.delete(pair);
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
    const proxy = new TcpProxy(server, state);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const addr = this.#server.address();
    return typeof addr === "object" && addr ? addr.port : 0;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Stops forwarding both ways (what arrives is held back); connections stay open. */
  cut(): void {
    this.#state.cut = true;
  }

  /** Forwards again, starting with what was held back. */
  restore(): void {
    this.#state.cut = false;
    for (const pair of this.#state.pairs) {
      for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
    }
  }

  /** Closes every connection and refuses new ones until `up()`: the client sees its connection drop. */
  down(): void {
    this.#state.down = true;
    for (const { client, upstream } of this.#state.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#state.pairs.clear();
  }

  /** Accepts connections again after `down()`. */
  up(): void {
    this.#state.down = false;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.#state.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#state.pairs.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
