// Fake peers shared by the mechanism tests and Weft's tests: a Kubernetes API (batch/v1 Jobs, core/v1 Pods)
// and the GitHub Actions endpoints, each a loopback HTTP server.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { httpPeer, sendJson } from "./mechanisms.test-helper.js";

export const K8S_TOKEN = "k8s-test-token-0003";
export const K8S_NS = "agents";

/** The batch/v1 Job and core/v1 Pod endpoints the mechanism calls, over a map of Jobs. */
export async function fakeKubernetesApi(options: { answer?: number } = {}) {
  const jobs = new Map<string, Record<string, unknown>>();
  const pods = new Map<string, Record<string, unknown>>();
  const peer = await httpPeer((req, res) => {
    if (req.headers.authorization !== `Bearer ${K8S_TOKEN}`)
      return sendJson(res, 401, { kind: "Status", message: "Unauthorized" });
    if (options.answer)
      return sendJson(res, options.answer, {
        kind: "Status",
        message: `jobs.batch is answered ${options.answer}`,
      });
    const url = new URL(req.url, "http://x");
    const jobsPath = `/apis/batch/v1/namespaces/${K8S_NS}/jobs`;
    if (url.pathname === jobsPath && req.method === "POST") {
      const job = JSON.parse(req.body) as { metadata: { name: string; labels: Record<string, string> } };
      if (jobs.has(job.metadata.name))
        return sendJson(res, 409, {
          kind: "Status",
          message: `jobs.batch "${job.metadata.name}" already exists`,
        });
      jobs.set(job.metadata.name, { ...job, status: { active: 1 } });
      pods.set(`${job.metadata.name}-abcde`, {
        metadata: { name: `${job.metadata.name}-abcde`, labels: job.metadata.labels },
        status: {
          phase: "Pending",
          containerStatuses: [{ name: "agent", state: { waiting: { reason: "ContainerCreating" } } }],
        },
      });
      return sendJson(res, 201, jobs.get(job.metadata.name));
    }
    if (url.pathname === jobsPath && req.method === "GET")
      return sendJson(res, 200, {
        kind: "JobList",
        apiVersion: "batch/v1",
        metadata: {},
        items: [...jobs.values()],
      });
    if (url.pathname.startsWith(`${jobsPath}/`)) {
      const name = url.pathname.slice(jobsPath.length + 1);
      const job = jobs.get(name);
      if (!job) return sendJson(res, 404, { kind: "Status", message: `jobs.batch "${name}" not found` });
      if (req.method === "GET") return sendJson(res, 200, job);
      if (req.method === "DELETE") {
        jobs.delete(name);
        for (const k of pods.keys()) if (k.startsWith(name)) pods.delete(k);
        return sendJson(res, 200, { kind: "Status", status: "Success" });
      }
    }
    if (url.pathname === `/api/v1/namespaces/${K8S_NS}/pods` && req.method === "GET") {
      const [key, value] = (url.searchParams.get("labelSelector") ?? "").split("=");
      const items = [...pods.values()].filter(
        (p) => (p.metadata as { labels: Record<string, string> }).labels[key ?? ""] === value,
      );
      return sendJson(res, 200, { kind: "PodList", apiVersion: "v1", metadata: {}, items });
    }
    return sendJson(res, 404, { kind: "Status", message: `no route ${req.method} ${url.pathname}` });
  });
  return { peer, jobs, pods };
}

export function kubeconfig(dir: string, server: string): string {
  const file = join(dir, "kubeconfig");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      // client-node refuses plain http unless TLS verification is off; the peer is on loopback.
      clusters: [{ name: "test", cluster: { server, "insecure-skip-tls-verify": true } }],
      users: [{ name: "weft", user: { token: K8S_TOKEN } }],
      contexts: [{ name: "test", context: { cluster: "test", user: "weft", namespace: K8S_NS } }],
      "current-context": "test",
    }),
  );
  return file;
}

export const GITHUB_TOKEN = "ghp_testtoken000000000000000000000004";
const BASE = "/repos/acme/agents/actions";

export interface GithubRun {
  id: number;
  name: string;
  display_title: string;
  status: string;
  conclusion: string | null;
  created_at: string;
  html_url: string;
  event: string;
}

/**
 * The Actions endpoints the mechanism calls. A dispatch's run appears only after a few list calls, and
 * runs are listed newest first, so "the latest run" would be the wrong one for concurrent dispatches.
 */
export async function fakeGithub() {
  const runs: GithubRun[] = [];
  const pending: Array<{ spinUpId: string; after: number }> = [];
  let nextId = 100;
  const dispatches: Array<Record<string, unknown>> = [];
  const peer = await httpPeer((req, res) => {
    if (req.headers.authorization !== `token ${GITHUB_TOKEN}`)
      return sendJson(res, 401, { message: "Bad credentials" });
    const url = new URL(req.url, "http://x");
    if (url.pathname === `${BASE}/workflows/agent.yml` && req.method === "GET")
      return sendJson(res, 200, {
        id: 7,
        name: "agent",
        state: "active",
        path: ".github/workflows/agent.yml",
      });
    if (url.pathname === `${BASE}/workflows/agent.yml/dispatches` && req.method === "POST") {
      const body = JSON.parse(req.body) as { ref: string; inputs: Record<string, string> };
      if (!body.inputs.loominal_spinup_id) return sendJson(res, 422, { message: "Required input missing" });
      dispatches.push(body);
      pending.push({ spinUpId: body.inputs.loominal_spinup_id, after: 2 });
      res.statusCode = 204;
      return void res.end();
    }
    if (url.pathname === `${BASE}/workflows/agent.yml/runs` && req.method === "GET") {
      for (const p of pending.splice(0)) {
        if (p.after-- > 0) {
          pending.push(p);
          continue;
        }
        const id = nextId++;
        runs.unshift({
          id,
          name: "agent",
          display_title: `loominal ${p.spinUpId}`,
          status: "queued",
          conclusion: null,
          created_at: new Date().toISOString(),
          html_url: `https://github.example/acme/agents/actions/runs/${id}`,
          event: "workflow_dispatch",
        });
      }
      if (url.searchParams.get("event") !== "workflow_dispatch")
        return sendJson(res, 400, { message: "event" });
      return sendJson(res, 200, { total_count: runs.length, workflow_runs: runs });
    }
    const m = url.pathname.match(new RegExp(`^${BASE}/runs/(\\d+)(/cancel)?$`));
    const run = m ? runs.find((r) => r.id === Number(m[1])) : undefined;
    if (m && !run) return sendJson(res, 404, { message: "Not Found" });
    if (run && !m?.[2] && req.method === "GET") return sendJson(res, 200, run);
    if (run && m?.[2] && req.method === "POST") {
      if (run.status === "completed")
        return sendJson(res, 409, { message: "Cannot cancel a workflow run that is completed." });
      run.status = "completed";
      run.conclusion = "cancelled";
      return sendJson(res, 202, {});
    }
    return sendJson(res, 404, { message: `no route ${req.method} ${url.pathname}` });
  });
  return { peer, runs, dispatches };
}
