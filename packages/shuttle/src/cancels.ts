import { z } from "zod";
import type { WorkDir } from "./paths.js";

export const CANCEL_PENDING_FILE = "cancel-pending.json";

const pendingCancelSchema = z.object({
  reason: z.string(),
  items: z.array(z.object({ subtaskId: z.string(), workId: z.string().regex(/^[0-9a-f]{32}$/) })),
});
export type PendingCancel = z.infer<typeof pendingCancelSchema>;

/**
 * Work items an orchestration that was cancelled (or failed) still has to cancel in Warp, kept in
 * `<orchestrationId>/cancel-pending.json` until Warp has taken every cancellation. Written before the
 * orchestration's phase changes, so a cancellation interrupted by a crash or a NATS outage is retried by
 * the reconcile loop of whichever server drives the orchestration next; the file is acted on only while
 * the orchestration is `cancelled` or `failed`.
 */
export class PendingCancels {
  #workDir: WorkDir;
  #byOrchestration = new Map<string, PendingCancel>();

  constructor(workDir: WorkDir) {
    this.#workDir = workDir;
  }

  /** Orchestrations with cancellations outstanding, as known to this process. */
  get ids(): string[] {
    return [...this.#byOrchestration.keys()];
  }

  has(orchestrationId: string): boolean {
    return this.#byOrchestration.has(orchestrationId);
  }

  get(orchestrationId: string): PendingCancel | undefined {
    return this.#byOrchestration.get(orchestrationId);
  }

  /** Reads the file (for an orchestration adopted from a server that is gone) and remembers it. */
  async load(orchestrationId: string): Promise<PendingCancel | undefined> {
    const file = await this.#workDir.readFile(
      this.#workDir.path(orchestrationId, CANCEL_PENDING_FILE),
      1 << 20,
    );
    if (!file) return undefined;
    let parsed: z.ZodSafeParseResult<PendingCancel>;
    try {
      parsed = pendingCancelSchema.safeParse(JSON.parse(file.content));
    } catch {
      return undefined;
    }
    if (!parsed.success || parsed.data.items.length === 0) return undefined;
    this.#byOrchestration.set(orchestrationId, parsed.data);
    return parsed.data;
  }

  /** Records what is left to cancel; nothing left removes the file. */
  async set(orchestrationId: string, pending: PendingCancel): Promise<void> {
    if (pending.items.length === 0) {
      await this.clear(orchestrationId);
      return;
    }
    await this.#workDir.writeFile([orchestrationId, CANCEL_PENDING_FILE], `${JSON.stringify(pending)}\n`);
    this.#byOrchestration.set(orchestrationId, pending);
  }

  async clear(orchestrationId: string): Promise<void> {
    this.#byOrchestration.delete(orchestrationId);
    await this.#workDir.remove([orchestrationId, CANCEL_PENDING_FILE]);
  }

  /** Stops tracking in this process (another server drives the orchestration now); the file stays. */
  forget(orchestrationId: string): void {
    this.#byOrchestration.delete(orchestrationId);
  }
}
