import { lstatSync } from "node:fs";
import { createConnection } from "node:net";
import { ancestorPids } from "@loominal/fabric/proc";
import { defaultLockDir, sessionWarpLock } from "@loominal/fabric/session";
import {
  HOOK_EVENTS,
  HOOK_PROTOCOL_VERSION,
  type HookAnswer,
  type HookEvent,
  type HookRequest,
  hookSocketPath,
} from "./protocol.js";

// The first thing `loominal hook <event>` runs: asks the Warp server of its session for the answer. Only
// Node's own modules and other modules that load nothing else (no zod, no NATS client): a hook starts on
// every prompt and tool call, and this is what makes it cheap.

/** The hook events, for callers that must not load the rest of Warp (the CLI's command tree). */
export { HOOK_EVENTS, type HookEvent };

export interface AskSessionWarpOptions {
  /** The hook's environment (`LOOMINAL_LOCK_DIR`). */
  env?: Record<string, string | undefined>;
  /** The hook's ancestors, nearest first (default: this process's, from /proc). */
  ancestors?: number[];
  /** How long the server may take to accept the request (ms); past it the hook runs alone. */
  acceptMs?: number;
  /** How long the server may take to answer once it accepted (ms). */
  answerMs?: number;
}

/** The server's answer, and which agent it is for. */
export type SessionWarpAnswer = HookAnswer & { agentId: string };

/**
 * The answer of the Warp server of this process's session to one hook, or undefined when there is no such
 * server (an unknown event, none in the process tree, two equally near, no socket), when its socket is not this user's, or
 * when it does not accept within `acceptMs` (300 ms) or answer within `answerMs` (4 s), or answers
 * something malformed. Undefined means: do the work in this process. Never throws.
 */
export async function askSessionWarp(
  request: { event: string; input: string; cwd: string },
  options: AskSessionWarpOptions = {},
): Promise<SessionWarpAnswer | undefined> {
  if (!(HOOK_EVENTS as readonly string[]).includes(request.event)) return undefined;
  let path: string;
  try {
    const lock = sessionWarpLock({
      ancestors: options.ancestors ?? ancestorPids(),
      lockDir: defaultLockDir(options.env ?? process.env),
    });
    if (!lock) return undefined;
    path = hookSocketPath(lock.path);
    // Only a socket of this user, open to nobody else: another user's could feed the agent anything.
    const st = lstatSync(path, { throwIfNoEntry: false });
    const uid = process.getuid?.();
    if (!st?.isSocket() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) return undefined;
  } catch {
    return undefined;
  }
  const line: HookRequest = { v: HOOK_PROTOCOL_VERSION, ...request, event: request.event as HookEvent };
  const acceptMs = options.acceptMs ?? 300;
  const answerMs = options.answerMs ?? 4_000;
  return new Promise((resolve) => {
    const socket = createConnection(path);
    let done = false;
    let accepted = false;
    let buffered = "";
    let timer = setTimeout(() => finish(undefined), acceptMs);
    function finish(answer: SessionWarpAnswer | undefined): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    }
    socket.setEncoding("utf8");
    socket.on("error", () => finish(undefined));
    socket.on("close", () => finish(undefined));
    socket.on("connect", () => socket.write(`${JSON.stringify(line)}\n`));
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
        const text = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(text) as Record<string, unknown>;
        } catch {
          finish(undefined);
          return;
        }
        if (msg === null || typeof msg !== "object" || msg.v !== HOOK_PROTOCOL_VERSION) {
          finish(undefined);
          return;
        }
        if (!accepted) {
          if (msg.accepted !== true) {
            finish(undefined);
            return;
          }
          accepted = true;
          clearTimeout(timer);
          timer = setTimeout(() => finish(undefined), answerMs);
          continue;
        }
        finish(answerOf(msg));
        return;
      }
    });
  });
}

function answerOf(msg: Record<string, unknown>): SessionWarpAnswer | undefined {
  const { ok, agentId, stdout, stderr } = msg;
  if (ok !== true || typeof agentId !== "string") return undefined;
  if (stdout !== undefined && typeof stdout !== "string") return undefined;
  if (!Array.isArray(stderr) || !stderr.every((s) => typeof s === "string")) return undefined;
  return { agentId, ...(stdout !== undefined ? { stdout } : {}), stderr: stderr as string[] };
}
