// The dashboard's one door to Weft: JSON calls to the REST API with the session cookie (sent by the
// browser) and, for changes, the session's CSRF token from the page.

const csrfToken = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: {
      accept: "application/json",
      ...(method !== "GET" ? { "x-csrf-token": csrfToken, "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json().catch(() => undefined)) as
    | (T & { error?: { message?: string } })
    | undefined;
  if (res.status === 401) {
    // The session ended: back to the login page.
    window.location.assign("/ui");
  }
  if (!res.ok) throw new ApiError(res.status, json?.error?.message ?? `${method} ${path}: ${res.status}`);
  return json as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const post = <T>(path: string, body: unknown = {}) => call<T>("POST", path, body);

/** A query string from the values that are set. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

// ——— what the API answers (the fields the dashboard shows) ———

export interface Agent {
  agentId: string;
  handle: string;
  agentType: string;
  status: "idle" | "busy" | "offline";
  capabilities: string[];
  boundaries: string[];
  currentTaskCount: number;
  maxConcurrentTasks: number;
  hostname: string;
  lastHeartbeat: string;
}

export const WORK_STATUSES = ["pending", "claimed", "completed", "dead", "cancelled", "discarded"] as const;
export type WorkStatus = (typeof WORK_STATUSES)[number];

export interface WorkSummary {
  workId: string;
  taskId: string;
  status: WorkStatus;
  capability: string;
  boundary: string;
  priority: number;
  attempts: number;
  maxAttempts: number;
  description: string;
  claimedBy?: string;
  createdAt: string;
  updatedAt: string;
}

export interface WorkEvent {
  type: string;
  at: string;
  agentId: string;
  status: string;
  attempt: number;
  revision: number;
  note?: string;
  reason?: string;
}

export interface DeadLetter {
  workId: string;
  capability: string;
  reason: string;
  attempts: number;
  deadAt: string;
  item: WorkSummary;
}

export interface Target {
  targetId: string;
  name: string;
  mechanism: string;
  agentType: string;
  capabilities: string[];
  enabled: boolean;
  health: { status: string; checkedAt?: string; message?: string };
  useCount: number;
}

export interface SpinUp {
  spinUpId: string;
  targetName: string;
  capability: string;
  status: string;
  agentId?: string;
  reason?: string;
  startedAt: string;
}

export interface Replica {
  replica_id: string;
  started_at: string;
  at: string;
  active_runs: number;
  draining: boolean;
  url: string | null;
}

export interface Run {
  run_id: string;
  agent: string;
  user_id: string;
  status: string;
  stop_reason: string | null;
  replica_id: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  iterations: number;
}

export interface RunEvent {
  run_id: string;
  seq: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

export interface RunnerSnapshot {
  state: string;
  replicas: Replica[];
}
