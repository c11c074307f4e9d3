import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, lstatSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import type { Logger } from "@loominal/fabric";
import { z } from "zod";
import type { Warp } from "../warp.js";
import {
  HOOK_EVENTS,
  HOOK_PROTOCOL_VERSION,
  HOOK_REQUEST_MAX_BYTES,
  type HookAnswer,
  type HookReply,
  hookSocketPath,
  hookTcpFilePath,
} from "./protocol.js";
import { HOOK_CONNECT_MS, hookReminders, natsUnreachableAnswer, parseHookInput } from "./reminders.js";

/** Past this, the answer is not recorded as shown any more: the hook stops waiting soon after (hook-client). */
const ANSWER_BUDGET_MS = 3_000;

const requestSchema = z.strictObject({
  v: z.literal(HOOK_PROTOCOL_VERSION),
  event: z.enum(HOOK_EVENTS),
  input: z.string(),
  cwd: z.string().min(1),
  reply: z.literal("shell").optional(),
});

/** A request over TCP must begin with the token and a newline within this many bytes. */
const TOKEN_LINE_MAX_BYTES = 256;

/**
 * The Warp server's answer to the Claude Code hooks of its session (`loominal hook <event>`): a Unix domain
 * socket beside its identity lock file (`<agentId>.sock`), mode 0600, on which a hook sends one request line
 * and reads the reminders for this server's agent, computed as the hook would (`hookReminders`) on this
 * server's connection, so the hook starts no NATS client of its own. NATS unreachable: the same note as the
 * hook's, at once.
 *
 * A socket left by a dead holder of the same identity is replaced; anything else at that path is left
 * alone (and nothing listens). The socket is removed on close.
 *
 * For the shell hook (`dist/hook.sh`, which cannot use a Unix socket with shell builtins alone) the server
 * also listens on 127.0.0.1, on a port the system picks, and writes `<agentId>.hook` beside the socket
 * (mode 0600): `<pid> <ppid> <port> <token>`. A TCP connection must begin with that token (a random
 * secret of this server, compared in constant time) and a newline, or it is closed without an answer;
 * then it is served as the socket is. The file is removed on close.
 */
export class HookSocketServer {
  readonly path: string;
  /** The shell hook's file, when the server listens on TCP too. */
  tcpFile: string | undefined;
  /** The loopback TCP port, when it listens on TCP too. */
  port: number | undefined;
  #server: Server;
  #tcp: Server | undefined;
  #tcpFileText = "";
  #ino: number;
  #logger: Logger;
  #open = new Set<Socket>();

  private constructor(path: string, server: Server, ino: number, logger: Logger) {
    this.path = path;
    this.#server = server;
    this.#ino = ino;
    this.#logger = logger;
  }

  /**
   * Listens beside `warp`'s lock file; undefined (with a warning) when there is none or the socket cannot
   * be made there. Hooks then do the work themselves, as without a server.
   */
  static async start(warp: Warp): Promise<HookSocketServer | undefined> {
    const logger = warp.logger;
    const lockPath = warp.identity.instanceOf.lockPath;
    if (lockPath === undefined) return undefined;
    const path = hookSocketPath(lockPath);
    try {
      // This process holds the lock, so a socket here is a dead holder's.
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (st && !st.isSocket()) {
        logger.warn({ path }, "not a socket; hooks of this session run without this server");
        return undefined;
      }
      if (st) unlinkSync(path);
    } catch (err) {
      logger.warn({ path, err: String(err) }, "cannot replace the stale hook socket");
      return undefined;
    }
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      serve(socket, warp);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        // The socket file is made while listening: with this mask it is never open to others, not even briefly.
        const mask = process.umask(0o177);
        try {
          server.listen(path, () => {
            server.off("error", reject);
            resolve();
          });
        } finally {
          process.umask(mask);
        }
      });
      chmodSync(path, 0o600);
    } catch (err) {
      server.close();
      logger.warn({ path, err: String(err) }, "cannot listen for hooks; they run without this server");
      return undefined;
    }
    server.on("error", (err) => logger.warn({ path, err: String(err) }, "hook socket error"));
    const hooks = new HookSocketServer(path, server, lstatSync(path).ino, logger);
    hooks.#open = sockets;
    await hooks.#listenTcp(warp, lockPath);
    logger.debug({ path, port: hooks.port }, "answering hooks");
    return hooks;
  }

  /** Listens on 127.0.0.1 for the shell hook and writes its file; on failure warns (hooks then use the socket). */
  async #listenTcp(warp: Warp, lockPath: string): Promise<void> {
    const file = hookTcpFilePath(lockPath);
    const token = randomBytes(32).toString("hex");
    const tcp = createServer((socket) => {
      this.#open.add(socket);
      socket.on("close", () => this.#open.delete(socket));
      serveTcp(socket, warp, token);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen({ host: "127.0.0.1", port: 0 }, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
      tcp.on("error", (err) => this.#logger.warn({ err: String(err) }, "hook TCP listener error"));
      const port = (tcp.address() as AddressInfo).port;
      const text = `${process.pid} ${process.ppid} ${port} ${token}\n`;
      // Written whole under another name, then renamed: the shell hook never reads half a line.
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, text, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, file);
      this.#tcp = tcp;
      this.#tcpFileText = text;
      this.tcpFile = file;
      this.port = port;
    } catch (err) {
      tcp.close();
      this.#logger.warn({ file, err: String(err) }, "cannot listen for the shell hook; hooks use the socket");
    }
  }

  /** Stops listening and removes the socket (if it is still this server's). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const tcp = this.#tcp;
    const tcpClosed = tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined;
    for (const s of this.#open) s.destroy();
    await closed;
    await tcpClosed;
    if (this.tcpFile) {
      try {
        // Only if it is still this server's (a later holder of the identity writes its own).
        if (readFileSync(this.tcpFile, "utf8") === this.#tcpFileText) unlinkSync(this.tcpFile);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT")
          this.#logger.warn({ file: this.tcpFile, err: String(err) }, "could not remove the hook file");
      }
    }
    try {
      if (lstatSync(this.path, { throwIfNoEntry: false })?.ino === this.#ino) unlinkSync(this.path);
    } catch (err) {
      this.#logger.warn({ path: this.path, err: String(err) }, "could not remove the hook socket");
    }
  }
}

/**
 * A connection to the TCP listener: the first line must be `token`, else it is closed without a word; the
 * rest is served as on the socket.
 */
function serveTcp(socket: Socket, warp: Warp, token: string): void {
  const expected = Buffer.from(token);
  let head = Buffer.alloc(0);
  socket.on("error", () => socket.destroy());
  socket.setTimeout(10_000, () => socket.destroy());
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf(10);
    if (end < 0) {
      if (head.length > TOKEN_LINE_MAX_BYTES) socket.destroy();
      return;
    }
    socket.off("data", onData);
    socket.pause();
    const given = head.subarray(0, end);
    // Compared in constant time (the length is no secret).
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      socket.destroy();
      return;
    }
    if (end + 1 < head.length) socket.unshift(head.subarray(end + 1));
    serve(socket, warp);
    socket.resume();
  };
  socket.on("data", onData);
}

/** Reads one request line from a hook, answers it, closes. */
function serve(socket: Socket, warp: Warp): void {
  const started = Date.now();
  let buffered = "";
  let handled = false;
  let shell = false;
  const reply = (r: HookReply) => {
    if (socket.destroyed) return;
    if (!shell) {
      socket.end(`${JSON.stringify(r)}\n`);
      return;
    }
    if (!r.ok) {
      socket.end(`fail ${r.error.replace(/\n/g, " ")}\n`);
      return;
    }
    // What the hook prints, as the Node hook prints it: each note a line on stderr, the output a line on stdout.
    const err = r.stderr.flatMap((note) => note.split("\n"));
    const out = r.stdout === undefined ? "" : `${r.stdout}\n`;
    socket.end(`exit 0 ${err.length}\n${err.map((l) => `${l}\n`).join("")}${out}`);
  };
  const fail = (error: string) => reply({ v: HOOK_PROTOCOL_VERSION, ok: false, error });
  socket.setEncoding("utf8");
  socket.on("error", () => socket.destroy());
  socket.setTimeout(10_000, () => socket.destroy());
  const onData = (chunk: string) => {
    if (handled) return;
    buffered += chunk;
    const end = buffered.indexOf("\n");
    if (end < 0) {
      if (buffered.length > HOOK_REQUEST_MAX_BYTES) {
        handled = true;
        fail(`invalid_input: request longer than ${HOOK_REQUEST_MAX_BYTES} bytes`);
      }
      return;
    }
    handled = true;
    let raw: unknown;
    try {
      raw = JSON.parse(buffered.slice(0, end));
    } catch {
      fail("invalid_input: the request is not a JSON line");
      return;
    }
    const parsed = requestSchema.safeParse(raw);
    shell = parsed.success
      ? parsed.data.reply === "shell"
      : (raw as { reply?: unknown } | null)?.reply === "shell";
    if (!parsed.success) {
      fail(`invalid_input: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`);
      return;
    }
    socket.write(shell ? "accepted\n" : `${JSON.stringify({ v: HOOK_PROTOCOL_VERSION, accepted: true })}\n`);
    const { event, input, cwd } = parsed.data;
    answer(warp, event, input, cwd, () => !socket.destroyed && Date.now() - started < ANSWER_BUDGET_MS)
      .then((a) => {
        warp.logger.debug(
          { event, ms: Date.now() - started, shown: a.stdout !== undefined },
          "answered a hook",
        );
        reply({ v: HOOK_PROTOCOL_VERSION, ok: true, agentId: warp.agentId, ...a });
      })
      .catch((err: unknown) => fail(`internal: ${err instanceof Error ? err.message : String(err)}`));
  };
  socket.on("data", onData);
}

async function answer(
  warp: Warp,
  event: (typeof HOOK_EVENTS)[number],
  inputText: string,
  cwd: string,
  stillWanted: () => boolean,
): Promise<HookAnswer> {
  try {
    // During a known outage this fails at once; while connecting it waits as long as a hook would.
    await warp.fabric.readyForCall(HOOK_CONNECT_MS);
  } catch {
    return natsUnreachableAnswer(warp.config.nats.servers, event);
  }
  return hookReminders({
    fabric: warp.fabric,
    config: warp.config,
    agentId: warp.agentId,
    event,
    input: parseHookInput(inputText),
    cwd,
    stillWanted,
  });
}
