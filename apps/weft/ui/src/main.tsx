import "./app.css";
import { render } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { get } from "./api.js";
import type { Connection } from "./live.js";
import { useLoader } from "./live.js";
import { ProjectView } from "./project.js";
import { RunnerView } from "./runner.js";

/** The project in the address (`#p=<projectId>`), so a reload or a shared link keeps it. */
function projectFromHash(): string | undefined {
  return new URLSearchParams(window.location.hash.slice(1)).get("p") ?? undefined;
}

function App() {
  const session = useLoader(
    () => get<{ projects: string[]; tokenKind: "admin" | "project" }>("/api/projects"),
    [],
  );
  const [projectId, setProjectId] = useState<string | undefined>(projectFromHash());
  const [connection, setConnection] = useState<Connection>("connecting");
  const onConnection = useCallback((c: Connection) => setConnection(c), []);
  // Projects appear as agents register and targets are created: the project view says when to look again.
  const onNewcomer = session.reload;
  const projects = session.data?.projects ?? [];
  const selected = projectId ?? projects[0];

  useEffect(() => {
    const onHash = () => setProjectId(projectFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const choose = (p: string) => {
    window.location.hash = `p=${encodeURIComponent(p)}`;
    setProjectId(p);
  };

  return (
    <>
      <header>
        <h1>
          Loominal <span>dashboard</span>
        </h1>
        <label>
          project{" "}
          <select
            aria-label="project"
            value={selected ?? ""}
            onChange={(e) => choose(e.currentTarget.value)}
            disabled={projects.length === 0 && !selected}
          >
            {projects.length === 0 && <option value="">no project yet</option>}
            {selected && !projects.includes(selected) && <option value={selected}>{selected}</option>}
            {projects.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <span class={`connection connection-${connection}`} data-connection={connection}>
          {connection === "live" ? "live" : connection}
        </span>
        <form method="post" action="/ui/logout">
          <button type="submit" class="link">
            log out
          </button>
        </form>
      </header>
      <main>
        {session.error && <p class="error">{session.error}</p>}
        {selected ? (
          <ProjectView
            key={selected}
            projectId={selected}
            onConnection={onConnection}
            onNewcomer={onNewcomer}
          />
        ) : (
          session.data && (
            <p class="muted">
              No project yet: projects appear once an agent registers, work is submitted or a target is
              created.
            </p>
          )
        )}
        {session.data?.tokenKind === "admin" && <RunnerView />}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
