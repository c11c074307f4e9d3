// What a Claude Code hook (`loominal hook <event>`) and the Warp server of its session say to each other over
// the server's Unix domain socket. Only Node's own modules here: the hook's first step loads this.

/** The Claude Code hook events `loominal hook` answers. */
export const HOOK_EVENTS = ["SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Version of the messages below; a server answers another version with an error (the hook then runs alone). */
export const HOOK_PROTOCOL_VERSION = 1;

/** A request line is refused past this many bytes (hook input is a prompt or a tool call). */
export const HOOK_REQUEST_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The request, one JSON line: the event, the hook input exactly as Claude Code passed it on stdin, and the
 * hook's working directory (used when the input names none).
 */
export interface HookRequest {
  v: number;
  event: HookEvent;
  input: string;
  cwd: string;
  /**
   * "shell": answer in lines a shell splits with `read` instead of JSON (`dist/hook.sh`): `accepted`, then
   * `exit <code> <n>`, n lines for stderr, and the rest (to the end) exactly what the hook prints on stdout;
   * or `fail <why>` instead of the exit line.
   */
  reply?: "shell";
}

/** The server's first line, sent as soon as it has read a valid request. */
export interface HookAccepted {
  v: number;
  accepted: true;
}

/** What the hook prints: `stdout` (the JSON Claude Code reads; absent when there is nothing new) and notes for stderr. */
export interface HookAnswer {
  stdout?: string;
  stderr: string[];
}

/** The server's last line: the answer, for the agent the server holds; or why it did not answer. */
export type HookReply =
  | ({ v: number; ok: true; agentId: string } & HookAnswer)
  | { v: number; ok: false; error: string };

/**
 * The file a Warp server writes beside its socket for `dist/hook.sh`, the shell hook: one line
 * `<pid> <ppid> <port> <token>\n` (mode 0600), the server's pid, its parent's, the loopback TCP port it
 * listens on for hooks and the secret a request over TCP must begin with.
 */
export function hookTcpFilePath(lockPath: string): string {
  return `${lockPath.endsWith(".lock") ? lockPath.slice(0, -5) : lockPath}.hook`;
}

/** The socket of a Warp server beside its identity lock file: `<agentId>.lock` → `<agentId>.sock`. */
export function hookSocketPath(lockPath: string): string {
  return `${lockPath.endsWith(".lock") ? lockPath.slice(0, -5) : lockPath}.sock`;
}
