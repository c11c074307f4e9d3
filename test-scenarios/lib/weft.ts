import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const WEFT_BIN = join(here, "..", "..", "apps", "weft", "dist", "bin.js");
export const AGENT_BIN = join(here, "..", "..", "apps", "agent", "dist", "bin.js");

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** A `weft serve` process on a free port. */
export class WeftProcess {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  url = "";
  #out = "";

  private constructor(env: Record<string, string>, cwd: string) {
    for (const bin of [WEFT_BIN, AGENT_BIN])
      if (!existsSync(bin)) throw new Error(`${bin} is missing: run pnpm -w build`);
    this.proc = spawn(process.execPath, [WEFT_BIN, "serve"], {
      cwd,
      env: { ...process.env, WEFT_PORT: "0", LOOMINAL_LOG_LEVEL: "debug", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(this.proc);
    this.proc.stdout?.on("data", (d: Buffer) => {
      this.#out += d.toString();
    });
    this.proc.stderr?.on("data", (d: Buffer) => {
      this.#out += d.toString();
    });
    this.exited = new Promise((r) =>
      this.proc.once("exit", (code) => {
        live.delete(this.proc);
        r(code);
      }),
    );
  }

  static async start(env: Record<string, string>, cwd: string): Promise<WeftProcess> {
    const w = new WeftProcess(env, cwd);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const m = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"weft listening"/.exec(w.#out);
      if (m?.[1]) {
        w.url = m[1];
        return w;
      }
      if (w.proc.exitCode !== null) throw new Error(`weft exited before listening:\n${w.#out}`);
      if (Date.now() > deadline) throw new Error(`weft did not start:\n${w.#out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get output(): string {
    return this.#out;
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
    await this.exited;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGTERM");
    await this.exited;
  }
}

/** A JSON client of Weft's REST API with one bearer token. */
export function api(base: () => string, token: string) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base()}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    // biome-ignore lint/suspicious/noExplicitAny: scenarios assert on the shape they expect
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
}

/** Whether a process id is alive on this host. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A `local` target that runs loominal-agent with `args` (plus `--command`). */
export function agentTarget(
  name: string,
  agentType: string,
  capabilities: string[],
  command: string,
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    mechanism: "local",
    agentType,
    capabilities,
    config: { command: process.execPath, args: [AGENT_BIN, "--command", command] },
    cooldownMs: 0,
    ...extra,
  };
}

/** Stops every agent process Weft started for these projects (spin-ups outlive Weft by design). */
export async function killSpunUpAgents(call: ReturnType<typeof api>, projectIds: string[]): Promise<void> {
  for (const p of projectIds) {
    const r = await call("GET", `/api/spin-ups?projectId=${p}`).catch(() => undefined);
    for (const s of (r?.body?.spinUps ?? []) as Array<{ handle?: { pid?: number } }>) {
      const pid = s.handle?.pid;
      if (!pid) continue;
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
