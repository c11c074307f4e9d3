import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  type Agent,
  type DeadLetter,
  get,
  post,
  query,
  type SpinUp,
  type Target,
  WORK_STATUSES,
  type WorkEvent,
  type WorkStatus,
  type WorkSummary,
} from "./api.js";
import { ago, type Connection, short, useEventStream, useLoader, useTick } from "./live.js";

const p = (projectId: string, extra: Record<string, string | number | undefined> = {}) =>
  query({ projectId, ...extra });

/** One project: agents, work, dead letters, targets and spin-ups, refreshed by the project's event stream. */
export function ProjectView(props: {
  projectId: string;
  onConnection: (c: Connection) => void;
  /** Told when an agent or target event came (the list of projects may have grown). */
  onNewcomer: () => void;
}) {
  const { projectId } = props;
  const [filters, setFilters] = useState<{ status?: WorkStatus; capability: string; boundary: string }>({
    capability: "",
    boundary: "",
  });
  const agents = useLoader(async () => {
    const [live, offline] = await Promise.all([
      get<{ agents: Agent[] }>(`/api/agents${p(projectId, { limit: 100 })}`),
      get<{ agents: Agent[] }>(`/api/agents${p(projectId, { status: "offline", limit: 100 })}`),
    ]);
    return [...live.agents, ...offline.agents];
  }, [projectId]);
  const claimed = useLoader(
    () => get<{ workItems: WorkSummary[] }>(`/api/work${p(projectId, { status: "claimed", limit: 100 })}`),
    [projectId],
  );
  const work = useLoader(
    () =>
      get<{ workItems: WorkSummary[]; hasMore: boolean }>(
        `/api/work${p(projectId, { status: filters.status, capability: filters.capability, boundary: filters.boundary, limit: 50 })}`,
      ),
    [projectId, filters.status, filters.capability, filters.boundary],
  );
  const dlq = useLoader(() => get<{ letters: DeadLetter[] }>(`/api/dlq${p(projectId)}`), [projectId]);
  const targets = useLoader(() => get<{ targets: Target[] }>(`/api/targets${p(projectId)}`), [projectId]);
  const spinUps = useLoader(() => get<{ spinUps: SpinUp[] }>(`/api/spin-ups${p(projectId)}`), [projectId]);

  const stats = useLoader(() => get<Stats>(`/api/stats${p(projectId)}`), [projectId]);

  const connection = useEventStream(`/api/events${p(projectId)}`, {
    agent: () => {
      agents.reload();
      stats.reload();
      props.onNewcomer();
    },
    work: () => {
      work.reload();
      claimed.reload();
      dlq.reload();
      agents.reload();
      stats.reload();
    },
    target: () => {
      targets.reload();
      stats.reload();
      props.onNewcomer();
    },
    spinup: () => {
      spinUps.reload();
      targets.reload();
      stats.reload();
    },
  });
  const { onConnection } = props;
  useEffect(() => {
    onConnection(connection);
    // Once the stream is (again) live, load everything afresh: nothing changed between the first load
    // (or a disconnect) and the stream's start goes unseen.
    if (connection === "live")
      for (const l of [agents, claimed, work, dlq, targets, spinUps, stats]) l.reload();
  }, [connection, onConnection]);

  return (
    <>
      {stats.data && <StatsBar stats={stats.data} />}
      <Agents agents={agents.data} claimed={claimed.data?.workItems ?? []} error={agents.error} />
      <Work
        projectId={projectId}
        items={work.data?.workItems}
        hasMore={work.data?.hasMore ?? false}
        error={work.error}
        filters={filters}
        setFilters={setFilters}
      />
      <DeadLetters
        projectId={projectId}
        letters={dlq.data?.letters}
        error={dlq.error}
        changed={() => {
          dlq.reload();
          work.reload();
        }}
      />
      <Targets targets={targets.data?.targets} spinUps={spinUps.data?.spinUps} error={targets.error} />
    </>
  );
}

interface Stats {
  agents: { online: number; idle: number; busy: number; offline: number };
  work: { queued: number; inFlight: number; dead: number };
  targets: { total: number; enabled: number };
  spinUps: { starting: number; running: number; failed: number; stopped: number };
}

function StatsBar({ stats: s }: { stats: Stats }) {
  const stat = (label: string, value: number, warn = false) => (
    <div class={`stat${warn ? " warn" : ""}`}>
      <strong>{value}</strong>
      <span>{label}</span>
    </div>
  );
  return (
    <div class="stats" id="stats">
      {stat("agents online", s.agents.online)}
      {stat("busy", s.agents.busy)}
      {stat("queued", s.work.queued)}
      {stat("in flight", s.work.inFlight)}
      {stat("dead", s.work.dead, s.work.dead > 0)}
      {stat("targets enabled", s.targets.enabled)}
      {stat("spin-ups running", s.spinUps.running + s.spinUps.starting)}
    </div>
  );
}

function Status(props: { value: string }) {
  return <span class={`status status-${props.value}`}>{props.value}</span>;
}

function Tags(props: { values: string[]; empty?: string }) {
  if (props.values.length === 0) return <span class="muted">{props.empty ?? "—"}</span>;
  return (
    <>
      {props.values.map((v) => (
        <span class="tag" key={v}>
          {v}
        </span>
      ))}
    </>
  );
}

function Failure(props: { error: string | undefined }) {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null;
}

function Agents(props: { agents: Agent[] | undefined; claimed: WorkSummary[]; error: string | undefined }) {
  const now = useTick(1_000);
  const workOf = (agentId: string) => props.claimed.filter((w) => w.claimedBy === agentId);
  return (
    <section id="agents">
      <h2>
        Agents <span class="count">{props.agents?.length ?? ""}</span>
      </h2>
      <Failure error={props.error} />
      {props.agents?.length === 0 && <p class="muted">No agent has registered in this project.</p>}
      {props.agents && props.agents.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>agent</th>
              <th>status</th>
              <th>type</th>
              <th>capabilities</th>
              <th>boundaries</th>
              <th>current work</th>
              <th>last heartbeat</th>
            </tr>
          </thead>
          <tbody>
            {props.agents.map((a) => (
              <tr key={a.agentId} data-agent-id={a.agentId} data-status={a.status}>
                <td title={a.agentId}>
                  {a.handle} <span class="muted">{short(a.agentId)}</span>
                </td>
                <td>
                  <Status value={a.status} />
                </td>
                <td>{a.agentType}</td>
                <td>
                  <Tags values={a.capabilities} />
                </td>
                <td>
                  <Tags values={a.boundaries} empty="every boundary" />
                </td>
                <td>
                  {workOf(a.agentId).map((w) => (
                    <span class="tag" key={w.workId} title={w.description}>
                      {w.taskId}
                    </span>
                  ))}
                  <span class="muted">
                    {" "}
                    {a.currentTaskCount}/{a.maxConcurrentTasks}
                  </span>
                </td>
                <td>{ago(a.lastHeartbeat, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Work(props: {
  projectId: string;
  items: WorkSummary[] | undefined;
  hasMore: boolean;
  error: string | undefined;
  filters: { status?: WorkStatus; capability: string; boundary: string };
  setFilters: (f: { status?: WorkStatus; capability: string; boundary: string }) => void;
}) {
  const [open, setOpen] = useState<string | undefined>(undefined);
  const now = useTick(5_000);
  const { filters, setFilters } = props;
  return (
    <section id="work">
      <h2>Work</h2>
      <div class="filters">
        <fieldset class="segmented" aria-label="status">
          {[undefined, ...WORK_STATUSES].map((s) => (
            <button
              type="button"
              key={s ?? "all"}
              class={filters.status === s ? "on" : ""}
              data-filter-status={s ?? "all"}
              onClick={() => setFilters({ ...filters, status: s })}
            >
              {s ?? "all"}
            </button>
          ))}
        </fieldset>
        <input
          placeholder="capability"
          aria-label="capability"
          value={filters.capability}
          onChange={(e) => setFilters({ ...filters, capability: e.currentTarget.value.trim() })}
        />
        <input
          placeholder="boundary"
          aria-label="boundary"
          value={filters.boundary}
          onChange={(e) => setFilters({ ...filters, boundary: e.currentTarget.value.trim() })}
        />
      </div>
      <Failure error={props.error} />
      {props.items?.length === 0 && <p class="muted">No work item matches.</p>}
      {props.items && props.items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>task</th>
              <th>status</th>
              <th>capability</th>
              <th>boundary</th>
              <th>attempts</th>
              <th>claimed by</th>
              <th>updated</th>
            </tr>
          </thead>
          <tbody>
            {props.items.map((w) => (
              <Fragment key={w.workId}>
                <tr
                  class="clickable"
                  data-work-id={w.workId}
                  data-status={w.status}
                  onClick={() => setOpen(open === w.workId ? undefined : w.workId)}
                >
                  <td title={w.description}>
                    {w.taskId} <span class="muted">{w.description}</span>
                  </td>
                  <td>
                    <Status value={w.status} />
                  </td>
                  <td>{w.capability}</td>
                  <td>{w.boundary}</td>
                  <td>
                    {w.attempts}/{w.maxAttempts}
                  </td>
                  <td>{short(w.claimedBy)}</td>
                  <td>{ago(w.updatedAt, now)}</td>
                </tr>
                {open === w.workId && (
                  <tr class="detail">
                    <td colSpan={7}>
                      <History projectId={props.projectId} workId={w.workId} updatedAt={w.updatedAt} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {props.hasMore && (
        <p class="muted">Showing the 50 most recently changed items; filter to see others.</p>
      )}
    </section>
  );
}

function History(props: { projectId: string; workId: string; updatedAt: string }) {
  const history = useLoader(
    () =>
      get<{ events: WorkEvent[] }>(`/api/work/${props.workId}/history${p(props.projectId)}`).then(
        (r) => r.events,
      ),
    [props.workId, props.updatedAt],
  );
  return (
    <div class="history">
      <Failure error={history.error} />
      <ol>
        {history.data?.map((e) => (
          <li key={`${e.revision}-${e.type}`}>
            <time>{new Date(e.at).toLocaleTimeString()}</time> <Status value={e.type} /> by {short(e.agentId)}
            {e.attempt > 0 && <span class="muted"> attempt {e.attempt}</span>}
            {e.note && <span> — {e.note}</span>}
            {e.reason && <span class="muted"> — {e.reason}</span>}
          </li>
        ))}
      </ol>
      <p class="muted">The ledger keeps an item's last four writes.</p>
    </div>
  );
}

function DeadLetters(props: {
  projectId: string;
  letters: DeadLetter[] | undefined;
  error: string | undefined;
  changed: () => void;
}) {
  const [busy, setBusy] = useState<string | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const act = async (workId: string, action: "retry" | "discard") => {
    setBusy(workId);
    setFailure(undefined);
    try {
      await post(`/api/dlq/${workId}/${action}${p(props.projectId)}`);
    } catch (err) {
      setFailure(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(undefined);
      props.changed();
    }
  };
  return (
    <section id="dlq">
      <h2>
        Dead letters <span class="count">{props.letters?.length ?? ""}</span>
      </h2>
      <Failure error={props.error ?? failure} />
      {props.letters?.length === 0 && <p class="muted">The dead-letter queue is empty.</p>}
      {props.letters && props.letters.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>task</th>
              <th>capability</th>
              <th>reason</th>
              <th>attempts</th>
              <th>died</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {props.letters.map((l) => (
              <tr key={l.workId} data-work-id={l.workId}>
                <td title={l.item.description}>{l.item.taskId}</td>
                <td>{l.capability}</td>
                <td>{l.reason}</td>
                <td>{l.attempts}</td>
                <td>{new Date(l.deadAt).toLocaleString()}</td>
                <td class="actions">
                  <button type="button" disabled={busy === l.workId} onClick={() => act(l.workId, "retry")}>
                    Retry
                  </button>
                  <button
                    type="button"
                    class="danger"
                    disabled={busy === l.workId}
                    onClick={() => act(l.workId, "discard")}
                  >
                    Discard
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Targets(props: {
  targets: Target[] | undefined;
  spinUps: SpinUp[] | undefined;
  error: string | undefined;
}) {
  const now = useTick(5_000);
  return (
    <section id="targets">
      <h2>Spin-up targets</h2>
      <Failure error={props.error} />
      {props.targets?.length === 0 && (
        <p class="muted">No target: Weft cannot start agents in this project.</p>
      )}
      {props.targets && props.targets.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>target</th>
              <th>mechanism</th>
              <th>agent type</th>
              <th>capabilities</th>
              <th>health</th>
              <th>spin-ups</th>
            </tr>
          </thead>
          <tbody>
            {props.targets.map((t) => (
              <tr key={t.targetId} data-target={t.name}>
                <td>
                  {t.name} {!t.enabled && <span class="tag">disabled</span>}
                </td>
                <td>{t.mechanism}</td>
                <td>{t.agentType}</td>
                <td>
                  <Tags values={t.capabilities} />
                </td>
                <td title={t.health.message}>
                  <Status value={t.health.status} />{" "}
                  <span class="muted">{t.health.checkedAt ? ago(t.health.checkedAt, now) : ""}</span>
                </td>
                <td>{t.useCount}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Recent spin-ups</h3>
      {props.spinUps?.length === 0 && <p class="muted">None yet.</p>}
      {props.spinUps && props.spinUps.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>target</th>
              <th>status</th>
              <th>capability</th>
              <th>agent</th>
              <th>started</th>
              <th>reason</th>
            </tr>
          </thead>
          <tbody>
            {props.spinUps.slice(0, 20).map((s) => (
              <tr key={s.spinUpId} data-spin-up-id={s.spinUpId}>
                <td>{s.targetName}</td>
                <td>
                  <Status value={s.status} />
                </td>
                <td>{s.capability}</td>
                <td>{short(s.agentId)}</td>
                <td>{ago(s.startedAt, now)}</td>
                <td class="muted">{s.reason ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
