import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import { inboxPrefixFor, randomId, warpConfigSchema } from "@loominal/protocol";
import { WorkQueue } from "@loominal/warp";

const here = dirname(fileURLToPath(import.meta.url));
const CLAIMER = join(here, "claimer.mjs");
const WARP_DIST = join(here, "..", "..", "packages", "warp", "dist", "index.js");

/** One JSON line a claimer printed. */
export interface ClaimerLine {
  event: string;
  agentId: string;
  pid: number;
  workId?: string;
  attempt?: number;
  code?: string;
  [key: string]: unknown;
}

/** A claimer child process (test-scenarios/lib/claimer.mjs) and what it has printed so far. */
export class ClaimerProcess {
  readonly lines: ClaimerLine[] = [];
  readonly agentId: string;
  readonly #proc: ChildProcess;
  #stderr = "";
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string>) {
    if (!existsSync(WARP_DIST))
      throw new Error(`${WARP_DIST} is missing: run pnpm --filter @loominal/warp exec tsc -b`);
    this.agentId = env.AGENT_ID ?? randomId();
    this.#proc = spawn(process.execPath, [CLAIMER], {
      env: { ...process.env, LOOMINAL_LOG_LEVEL: "warn", ...env, AGENT_ID: this.agentId },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let buf = "";
    this.#proc.stdout?.on("data", (chunk: Buffer) => {
      buf += chunk.toString();
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as ClaimerLine);
        } catch {
          // Not one of ours (a stray log line): ignore.
        }
        nl = buf.indexOf("\n");
      }
    });
    this.#proc.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4_000);
    });
    this.exited = new Promise((resolve) => this.#proc.once("exit", (code) => resolve(code)));
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  get stderr(): string {
    return this.#stderr;
  }

  of(event: string): ClaimerLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  /** SIGKILL: the process gets no chance to complete, fail or hand anything back. */
  async kill(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    this.#proc.kill("SIGKILL");
    await this.exited;
  }

  /** Asks the claimer to stop after its current items, and waits (SIGKILL after `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    this.#proc.kill("SIGTERM");
    const timer = setTimeout(() => this.#proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export const scenarioWorkSettings = (
  overrides: Partial<ReturnType<typeof warpConfigSchema.parse>["work"]> = {},
) => ({
  ...warpConfigSchema.parse({}).work,
  ackWaitMs: 2_000,
  retryBackoffMs: 100,
  ...overrides,
});

/** A WorkQueue in the test process (for offering and inspecting), on its own connection. */
export async function openWorkQueue(
  url: string,
  projectId: string,
  settings = scenarioWorkSettings(),
  auth?: { user: string; password: string },
): Promise<{ work: WorkQueue; fabric: Fabric; close(): Promise<void> }> {
  const nats = auth
    ? { servers: [url], user: auth.user, password: auth.password, inboxPrefix: inboxPrefixFor(auth.user) }
    : { servers: [url] };
  const fabric = Fabric.start({ nats, name: "scenario-driver" });
  await fabric.ready(10_000);
  const work = new WorkQueue({
    fabric,
    projectId,
    agentId: randomId(),
    userId: "scenario-user",
    settings,
    connectTimeoutMs: 5_000,
  });
  return {
    work,
    fabric,
    async close() {
      await work.close();
      await fabric.close();
    },
  };
}
