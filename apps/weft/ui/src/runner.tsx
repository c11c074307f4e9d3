import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { get, type Replica, type Run, type RunEvent, type RunnerSnapshot } from "./api.js";
import { ago, short, useEventStream, useTick } from "./live.js";

/** Runs kept on the page; older ones drop off as new ones come. */
const MAX_RUNS = 300;

interface RunnerState {
  available: boolean;
  state: string;
  replicas: Replica[];
  runs: Map<string, Run>;
}

/** The Runner cluster (admin tokens): replicas, runs per user, and one run's events live. */
export function RunnerView() {
  const [runner, setRunner] = useState<RunnerState | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [open, setOpen] = useState<string | undefined>(undefined);
  const now = useTick(1_000);

  useEffect(() => {
    get<{ available: boolean; state: string; replicas: Replica[]; runs: Run[] }>("/api/runner")
      .then((r) =>
        setRunner((cur) => ({
          available: r.available,
          state: cur?.state ?? r.state,
          replicas: cur?.replicas ?? r.replicas,
          // Records streamed before this answer are newer than it.
          runs: new Map([...r.runs.map((x) => [x.run_id, x] as const), ...(cur?.runs ?? new Map())]),
        })),
      )
      .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, []);

  useEventStream("/api/runner/stream", {
    replicas: (data) => {
      const s = data as RunnerSnapshot;
      setRunner((cur) => ({
        available: cur?.available ?? s.replicas.length > 0,
        runs: cur?.runs ?? new Map(),
        state: s.state,
        replicas: s.replicas,
      }));
    },
    run: (data) => {
      const run = data as Run;
      setRunner((cur) => {
        const runs = new Map(cur?.runs ?? []);
        runs.set(run.run_id, run);
        if (runs.size > MAX_RUNS) {
          const oldest = [...runs.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
          for (const r of oldest.slice(0, runs.size - MAX_RUNS)) runs.delete(r.run_id);
        }
        return { available: true, state: cur?.state ?? "running", replicas: cur?.replicas ?? [], runs };
      });
    },
  });

  const byUser = new Map<string, Run[]>();
  for (const r of [...(runner?.runs.values() ?? [])].sort((a, b) =>
    b.created_at.localeCompare(a.created_at),
  )) {
    byUser.set(r.user_id, [...(byUser.get(r.user_id) ?? []), r]);
  }

  return (
    <section id="runner">
      <h2>
        Runner {runner?.available && <span class={`status status-${runner.state}`}>{runner.state}</span>}
      </h2>
      {error && <p class="error">{error}</p>}
      {runner && !runner.available && (
        <p class="muted">No Runner has used this NATS yet (start one with `loominal-runner`).</p>
      )}
      <h3>Replicas</h3>
      {runner?.replicas.length === 0 && <p class="muted">No live replica.</p>}
      {runner && runner.replicas.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>replica</th>
              <th>active runs</th>
              <th>up since</th>
              <th>heartbeat</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {runner.replicas.map((r) => (
              <tr key={r.replica_id} data-replica-id={r.replica_id}>
                <td>{r.replica_id}</td>
                <td>{r.active_runs}</td>
                <td>{ago(r.started_at, now)}</td>
                <td>{ago(r.at, now)}</td>
                <td>{r.draining && <span class="tag">draining</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Runs by user</h3>
      {byUser.size === 0 && <p class="muted">No run yet.</p>}
      {[...byUser.entries()].map(([user, runs]) => (
        <details key={user} open class="user-runs">
          <summary>
            {user} <span class="muted">{runs.length} runs</span>{" "}
            {runs.filter((r) => r.status === "running" || r.status === "queued").length > 0 && (
              <span class="status status-running">
                {runs.filter((r) => r.status === "running" || r.status === "queued").length} active
              </span>
            )}
          </summary>
          <table>
            <thead>
              <tr>
                <th>run</th>
                <th>agent</th>
                <th>state</th>
                <th>replica</th>
                <th>created</th>
                <th>stop reason</th>
              </tr>
            </thead>
            <tbody>
              {runs.slice(0, 20).map((r) => (
                <Fragment key={r.run_id}>
                  <tr
                    class="clickable"
                    data-run-id={r.run_id}
                    data-status={r.status}
                    onClick={() => setOpen(open === r.run_id ? undefined : r.run_id)}
                  >
                    <td title={r.run_id}>{short(r.run_id)}</td>
                    <td>{r.agent}</td>
                    <td>
                      <span class={`status status-${r.status}`}>{r.status}</span>
                    </td>
                    <td>{r.replica_id}</td>
                    <td>{ago(r.created_at, now)}</td>
                    <td class="muted">{r.stop_reason ?? ""}</td>
                  </tr>
                  {open === r.run_id && (
                    <tr class="detail">
                      <td colSpan={6}>
                        <RunEvents runId={r.run_id} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </details>
      ))}
    </section>
  );
}

/** Events a run ends with: after one, the stream is closed rather than followed again. */
const TERMINAL = new Set(["done", "error"]);

function RunEvents(props: { runId: string }) {
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [ended, setEnded] = useState(false);
  const connection = useEventStream(ended ? undefined : `/api/runner/runs/${props.runId}/stream`, {
    "run-event": (data) => {
      const e = data as RunEvent;
      setEvents((cur) => (cur.some((x) => x.seq === e.seq) ? cur : [...cur, e]));
      if (TERMINAL.has(e.type)) setEnded(true);
    },
  });
  return (
    <div class="history">
      <ol>
        {events.map((e) => (
          <li key={e.seq}>
            <time>{new Date(e.at).toLocaleTimeString()}</time> <span class="tag">{e.type}</span>{" "}
            <code>{JSON.stringify(e.data).slice(0, 160)}</code>
          </li>
        ))}
      </ol>
      <p class="muted">
        {ended ? "the run has ended" : connection === "live" ? "following live" : connection}
      </p>
    </div>
  );
}
