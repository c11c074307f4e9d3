import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

/** A runner replica as a separate process (the built bin), as operators run it. */
export class Replica {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly replicaId: string;
  readonly output: string[];

  private constructor(proc: ChildProcess, url: string, replicaId: string, output: string[]) {
    this.proc = proc;
    this.url = url;
    this.replicaId = replicaId;
    this.output = output;
  }

  static start(env: Record<string, string>): Promise<Replica> {
    const output: string[] = [];
    const proc = spawn(process.execPath, [BIN], {
      env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", RUNNER_PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new Promise((resolve, reject) => {
      let buffer = "";
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`replica did not start within 20 s:\n${output.join("")}`));
      }, 20_000);
      proc.stdout?.on("data", (b: Buffer) => {
        const s = b.toString();
        output.push(s);
        if (output.length > 500) output.splice(0, output.length - 500);
        buffer += s;
        for (const line of buffer.split("\n")) {
          if (!line.startsWith('{"ready":true')) continue;
          clearTimeout(timer);
          const ready = JSON.parse(line) as { url: string; replica_id: string };
          resolve(new Replica(proc, ready.url, ready.replica_id, output));
          buffer = "";
          return;
        }
      });
      proc.stderr?.on("data", (b: Buffer) => output.push(b.toString()));
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`replica exited (${code}) before it was ready:\n${output.join("")}`));
      });
    });
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGKILL: no drain, no goodbye. */
  kill(): Promise<void> {
    return this.#signal("SIGKILL");
  }

  /** SIGSTOP: the process freezes with its connections open (a long GC pause, a stopped container). */
  freeze(): void {
    if (this.running) this.proc.kill("SIGSTOP");
  }

  /** SIGCONT after freeze(). */
  thaw(): void {
    if (this.running) this.proc.kill("SIGCONT");
  }

  /** SIGTERM and wait; resolves with the exit code. */
  async term(): Promise<number | null> {
    await this.#signal("SIGTERM");
    return this.proc.exitCode;
  }

  #signal(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.once("exit", () => resolve());
      this.proc.kill(signal);
    });
  }

  async fetch(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const { json, ...rest } = init;
    return fetch(`${this.url}${path}`, {
      ...rest,
      ...(json !== undefined
        ? {
            method: rest.method ?? "POST",
            body: JSON.stringify(json),
            headers: { "content-type": "application/json", ...(rest.headers ?? {}) },
          }
        : {}),
    });
  }
}

/** Reads an SSE response into events until it ends (or `until` says stop). */
export async function readSse(
  res: Response,
  until?: (event: { event: string; data: Record<string, unknown> }) => boolean,
): Promise<Array<{ event: string; data: Record<string, unknown> }>> {
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  const reader = res.body?.getReader();
  if (!reader) return events;
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let idx = buffer.indexOf("\n\n");
    while (idx >= 0) {
      const block = buffer.slice(0, idx);
      buffer = buffer.slice(idx + 2);
      idx = buffer.indexOf("\n\n");
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!event || data === undefined) continue;
      const e = { event, data: JSON.parse(data) as Record<string, unknown> };
      events.push(e);
      if (until?.(e)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}
