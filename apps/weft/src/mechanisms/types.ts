import type { SpinUpMechanism as MechanismName, RemoteState, TargetRecord } from "@loominal/protocol";

/** What a mechanism is asked to start: one agent for one spin-up. */
export interface StartRequest {
  spinUpId: string;
  target: TargetRecord;
  /** Environment for the agent: LOOMINAL_SPINUP_ID, LOOMINAL_TARGET_ID, LOOMINAL_PROJECT_ID, NATS_URL, … */
  env: Record<string, string>;
}

/** What a mechanism needs later to stop what it started (stored in the spin-up record). */
export type MechanismHandle = Record<string, unknown>;

/** What a remote mechanism knows of a spin-up it started (the agent's registration is what Weft trusts). */
export interface RemoteStatus {
  state: RemoteState;
  message: string;
}

export interface HealthResult {
  ok: boolean;
  message: string;
}

/**
 * One way of starting agents. `local` runs a child process on Weft's host; ssh, kubernetes,
 * github-actions and webhook implement the same interface.
 */
export interface Mechanism {
  readonly name: MechanismName;
  /** Throws a LoominalError(invalid_input) naming the field when `config` is not valid for it. */
  validateConfig(config: unknown): Record<string, unknown>;
  /** Starts the agent; resolves once it was launched (not yet verified: that is the registration). */
  start(request: StartRequest): Promise<MechanismHandle>;
  /** Stops what `start` launched; a no-op when it is already gone. */
  stop(handle: MechanismHandle, options: { graceMs: number }): Promise<void>;
  /** What the remote side says of a spin-up it started (mechanisms that can ask). */
  status?(handle: MechanismHandle): Promise<RemoteStatus>;
  /** Whether the target looks able to start agents (command present, host reachable, …). */
  test(target: TargetRecord): Promise<HealthResult>;
}
