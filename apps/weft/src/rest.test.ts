import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, type NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPERATIONS } from "./api.js";
import { openApiPath } from "./openapi.js";
import {
  client,
  readToken,
  startWeftProcess,
  startWeftStack,
  stopWeftStack,
  type WeftProcess,
  weftStartFailure,
} from "./weft.test-helper.js";

const ADMIN = "admin-token-0123456789abcdef";
const LIMITED = "limited-token-0123456789abcdef";
const p1 = uniqueProjectId();
const p2 = uniqueProjectId();

let nats: NatsServer;
let weft: WeftProcess;
let dir: { path: string; cleanup: () => void };

beforeAll(async () => {
  ({ nats, weft, dir } = await startWeftStack("weft-rest-", {
    WEFT_API_TOKENS: `${ADMIN},${LIMITED}:${p1}`,
  }));
});

afterAll(async () => {
  await stopWeftStack({ nats, weft, dir });
});

describe("auth", () => {
  it("serves /health without a token and everything else only with one", async () => {
    const anon = client(weft.url);
    expect((await anon("GET", "/health")).status).toBe(200);
    const none = await anon("GET", `/api/work?projectId=${p1}`);
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("unauthorized");
    expect(
      (await client(weft.url, "wrong-token-0123456789abcdef")("GET", `/api/work?projectId=${p1}`)).status,
    ).toBe(401);
    expect((await anon("GET", "/metrics")).status).toBe(401);
    expect((await anon("GET", "/api/openapi.json")).status).toBe(401);
  });

  it("limits a project token to its projects and keeps it off target mutations", async () => {
    const limited = client(weft.url, LIMITED);
    // Its only project is the default.
    expect((await limited("GET", "/api/work")).status).toBe(200);
    const other = await limited("GET", `/api/work?projectId=${p2}`);
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe("forbidden");
    const create = await limited("POST", `/api/targets?projectId=${p1}`, {
      name: "t1",
      mechanism: "local",
      agentType: "claude-code",
      capabilities: ["typescript"],
      config: { command: "/bin/true" },
    });
    expect(create.status).toBe(403);
    expect(create.body.error.message).toMatch(/admin token/);
    // Reading targets is fine.
    expect((await limited("GET", "/api/targets")).status).toBe(200);
    // Stats across projects are for admins: a project token gets its own project.
    const stats = await limited("GET", "/api/stats");
    expect(stats.status).toBe(200);
    expect(stats.body.projectId).toBe(p1);
  });

  it("requires projectId from an admin token", async () => {
    const r = await client(weft.url, ADMIN)("GET", "/api/work");
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe("projectId");
  });
});

describe("validation", () => {
  it("answers 400 naming the field", async () => {
    const admin = client(weft.url, ADMIN);
    const r = await admin("POST", `/api/work?projectId=${p1}`, {
      description: "x",
      capability: "Type Script",
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_input");
    expect(r.body.error.details.field).toBe("capability");
    const extra = await admin("POST", `/api/work?projectId=${p1}`, {
      description: "x",
      capability: "ts",
      colour: "red",
    });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toMatch(/colour/);
    const bad = await admin("GET", `/api/work/not-an-id?projectId=${p1}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe("workId");
    const json = await admin("POST", `/api/work?projectId=${p1}`, "{not json");
    expect(json.status).toBe(400);
  });

  it("answers 413 for a body over 1 MiB", async () => {
    const r = await client(weft.url, ADMIN)("POST", `/api/work?projectId=${p1}`, {
      description: "x".repeat(1024 * 1024 + 10),
      capability: "ts",
    });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
  });

  it("answers 404 for an unknown route", async () => {
    const r = await client(weft.url, ADMIN)("GET", "/api/nothing-here");
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("not_found");
  });
});

describe("work", () => {
  it("submits, lists, gets, cancels and batch-cancels", async () => {
    const admin = client(weft.url, ADMIN);
    const sub = await admin("POST", `/api/work?projectId=${p1}`, {
      description: "write the parser",
      capability: "typescript",
      priority: 7,
      taskId: "parser",
    });
    expect(sub.status).toBe(201);
    expect(sub.body.status).toBe("pending");
    expect(sub.body.spinUp).toBeNull();
    const workId = sub.body.workId as string;
    // Idempotent with a workId.
    const again = await admin("POST", `/api/work?projectId=${p1}`, {
      description: "write the parser",
      capability: "typescript",
      taskId: "parser",
      workId,
    });
    expect(again.status).toBe(201);
    expect(again.body.workId).toBe(workId);

    const list = await admin("GET", `/api/work?projectId=${p1}&status=pending&capability=typescript`);
    expect(list.status).toBe(200);
    expect(list.body.workItems.map((w: { workId: string }) => w.workId)).toContain(workId);
    expect(list.body.workItems.filter((w: { workId: string }) => w.workId === workId)).toHaveLength(1);

    const got = await admin("GET", `/api/work/${workId}?projectId=${p1}`);
    expect(got.body.priority).toBe(7);
    // Another project does not see it.
    expect((await admin("GET", `/api/work/${workId}?projectId=${p2}`)).status).toBe(404);

    const cancel = await admin("POST", `/api/work/${workId}/cancel?projectId=${p1}`, {
      reason: "not needed",
    });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe("cancelled");
    const twice = await admin("POST", `/api/work/${workId}/cancel?projectId=${p1}`, {});
    expect(twice.status).toBe(409);

    const a = (
      await admin("POST", `/api/work?projectId=${p1}`, { description: "a", capability: "typescript" })
    ).body.workId;
    const b = (
      await admin("POST", `/api/work?projectId=${p1}`, { description: "b", capability: "typescript" })
    ).body.workId;
    const batch = await admin("POST", `/api/work/cancel-batch?projectId=${p1}`, { workIds: [a, b, workId] });
    expect(batch.body.cancelled).toBe(2);
    expect(batch.body.results.find((r: { workId: string }) => r.workId === workId).success).toBe(false);
  });

  it("rejects a requiredAgentType the boundary policy forbids", async () => {
    // With no config file only `default` has a policy, which accepts every type: anything goes there.
    const admin = client(weft.url, ADMIN);
    const r = await admin("POST", `/api/work?projectId=${p1}`, {
      description: "x",
      capability: "ts",
      requiredAgentType: "copilot-cli",
    });
    expect(r.status).toBe(201);
    expect(r.body.item.requiredAgentType).toBe("copilot-cli");
  });
});

describe("targets, agents, stats, channels", () => {
  it("creates, reads, updates, tests, disables, enables and deletes a target", async () => {
    const admin = client(weft.url, ADMIN);
    const body = {
      name: "builder",
      mechanism: "local",
      agentType: "claude-code",
      capabilities: ["typescript"],
      config: { command: "/bin/true", args: [] },
      cooldownMs: 0,
    };
    const created = await admin("POST", `/api/targets?projectId=${p2}`, body);
    expect(created.status).toBe(201);
    const id = created.body.targetId as string;
    expect((await admin("POST", `/api/targets?projectId=${p2}`, body)).status).toBe(409);
    const badConfig = await admin("POST", `/api/targets?projectId=${p2}`, {
      ...body,
      name: "b2",
      config: { args: [] },
    });
    expect(badConfig.status).toBe(400);
    expect(badConfig.body.error.message).toMatch(/config\.command/);
    expect((await admin("GET", `/api/targets/builder?projectId=${p2}`)).body.targetId).toBe(id);
    expect((await admin("GET", `/api/targets/${id}?projectId=${p2}`)).body.name).toBe("builder");
    expect((await admin("GET", `/api/targets?projectId=${p2}`)).body.count).toBe(1);
    const upd = await admin("PUT", `/api/targets/${id}?projectId=${p2}`, { maxConcurrent: 2 });
    expect(upd.body.maxConcurrent).toBe(2);
    const test = await admin("POST", `/api/targets/${id}/test?projectId=${p2}`);
    expect(test.body.ok).toBe(true);
    expect(test.body.target.health.status).toBe("healthy");
    expect((await admin("POST", `/api/targets/${id}/disable?projectId=${p2}`)).body.enabled).toBe(false);
    const refused = await admin("POST", `/api/targets/${id}/spin-up?projectId=${p2}`, {});
    expect(refused.status).toBe(409);
    expect((await admin("POST", `/api/targets/${id}/enable?projectId=${p2}`)).body.enabled).toBe(true);
    expect((await admin("DELETE", `/api/targets/${id}?projectId=${p2}`)).body.deleted).toBe(true);
    expect((await admin("GET", `/api/targets/${id}?projectId=${p2}`)).status).toBe(404);
  });

  it("the leader checks each enabled target's health by itself", async () => {
    const admin = client(weft.url, ADMIN);
    const p = uniqueProjectId();
    const base = { mechanism: "local", agentType: "claude-code", capabilities: ["ts"] };
    await admin("POST", `/api/targets?projectId=${p}`, {
      ...base,
      name: "good",
      config: { command: "/bin/true" },
    });
    await admin("POST", `/api/targets?projectId=${p}`, {
      ...base,
      name: "bad",
      config: { command: "/no/such/agent" },
    });
    await eventually(
      async () => {
        const t = (await admin("GET", `/api/targets?projectId=${p}`)).body.targets as Array<{
          name: string;
          health: { status: string };
        }>;
        expect(t.find((x) => x.name === "good")?.health.status).toBe("healthy");
        expect(t.find((x) => x.name === "bad")?.health.status).toBe("unhealthy");
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
  });

  it("lists agents, 404s an unknown one, and reports stats per project and across projects", async () => {
    const admin = client(weft.url, ADMIN);
    const agents = await admin("GET", `/api/agents?projectId=${p1}`);
    expect(agents.status).toBe(200);
    expect(agents.body.agents).toEqual([]);
    expect((await admin("GET", `/api/agents/${"a".repeat(32)}?projectId=${p1}`)).status).toBe(404);
    const shut = await admin("POST", `/api/agents/shutdown-batch?projectId=${p1}`, { agentIds: [] });
    expect(shut.body.results).toEqual([]);
    const stats = await admin("GET", `/api/stats?projectId=${p1}`);
    expect(stats.body.projectId).toBe(p1);
    expect(stats.body.work.queued).toBeGreaterThanOrEqual(1);
    const byProject = await admin("GET", "/api/stats/projects");
    expect(byProject.body.projects.map((s: { projectId: string }) => s.projectId)).toEqual(
      expect.arrayContaining([p1]),
    );
    expect((await client(weft.url, LIMITED)("GET", "/api/stats/projects")).status).toBe(403);
    const all = await admin("GET", "/api/stats");
    expect(all.body.projects.map((s: { projectId: string }) => s.projectId)).toEqual(
      expect.arrayContaining([p1]),
    );
    expect((await admin("GET", `/api/spin-ups?projectId=${p1}`)).body.spinUps).toEqual([]);
    expect((await admin("GET", `/api/channels?projectId=${p1}`)).body.channels).toEqual([]);
    expect((await admin("GET", `/api/channels/roadmap/messages?projectId=${p1}`)).status).toBe(404);
  });

  it("serves Prometheus metrics", async () => {
    const r = await client(weft.url, ADMIN)("GET", "/metrics");
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/weft_work_submitted_total \d+/);
    expect(r.body).toMatch(/weft_http_request_duration_seconds_bucket/);
    expect(r.body).toMatch(/weft_leader 1/);
    expect(r.body).toMatch(new RegExp(`weft_work_items\\{project="${p1}",status="queued"\\} \\d+`));
  });
});

describe("OpenAPI", () => {
  it("documents every route the API serves", async () => {
    const doc = (await client(weft.url, ADMIN)("GET", "/api/openapi.json")).body;
    expect(doc.openapi).toBe("3.1.0");
    const documented = new Set<string>();
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>))
      for (const m of Object.keys(methods)) documented.add(`${m} ${path}`);
    for (const op of OPERATIONS) expect(documented).toContain(`${op.method} ${openApiPath(op.path)}`);
    for (const extra of ["get /health", "get /metrics", "get /api/openapi.json", "get /api/events"])
      expect(documented).toContain(extra);
    const submit = doc.paths["/api/work"].post;
    expect(submit.requestBody.content["application/json"].schema.properties.capability).toBeDefined();
  });
});

describe("startup", () => {
  it("generates a token file with mode 0600 when no token is configured, and logs its path only", async () => {
    const d = tempDir("weft-token-");
    const w = await startWeftProcess({ cwd: d.path, env: { NATS_URL: nats.url, WEFT_API_TOKENS: "" } });
    try {
      const file = join(d.path, ".loominal", "weft-token");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const token = readToken(file);
      expect(w.output()).toContain(file);
      expect(w.output()).not.toContain(token);
      expect((await client(w.url, token)("GET", `/api/work?projectId=${p1}`)).status).toBe(200);
      expect((await client(w.url)("GET", `/api/work?projectId=${p1}`)).status).toBe(401);
    } finally {
      await w.stop();
      d.cleanup();
    }
  });

  it("stops at start naming a bad variable or a bad file field", async () => {
    const env = await weftStartFailure({ cwd: dir.path, env: { NATS_URL: nats.url, WEFT_PORT: "http" } });
    expect(env.code).not.toBe(0);
    expect(env.output).toMatch(/WEFT_PORT/);
    const short = await weftStartFailure({
      cwd: dir.path,
      env: { NATS_URL: nats.url, WEFT_API_TOKENS: "short" },
    });
    expect(short.output).toMatch(/WEFT_API_TOKENS entry 1/);
    expect(short.output).not.toMatch(/short[^e]/);
    const file = join(dir.path, "bad.yaml");
    writeFileSync(file, "boundaries:\n  - name: Corporate\n");
    const bad = await weftStartFailure({ cwd: dir.path, env: { NATS_URL: nats.url, WEFT_CONFIG: file } });
    expect(bad.code).not.toBe(0);
    expect(bad.output).toContain(file);
    expect(bad.output).toMatch(/boundaries\.0\.name/);
  });
});

/** Reads server-sent events until `enough` says stop (or the time is up). */
async function readEvents(
  url: string,
  headers: Record<string, string>,
  enough: (
    events: Array<{ id: string; event: string; data: { type: string; data: Record<string, unknown> } }>,
  ) => boolean,
) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 20_000);
  const events: Array<{ id: string; event: string; data: { type: string; data: Record<string, unknown> } }> =
    [];
  try {
    const res = await fetch(url, { headers, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let buf = "";
    const decoder = new TextDecoder();
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value);
      let end = buf.indexOf("\n\n");
      while (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const field = (name: string) =>
          /^(.*)$/m.exec(
            block
              .split("\n")
              .find((l) => l.startsWith(`${name}: `))
              ?.slice(name.length + 2) ?? "",
          )?.[1] ?? "";
        if (block.includes("data: "))
          events.push({ id: field("id"), event: field("event"), data: JSON.parse(field("data")) });
        end = buf.indexOf("\n\n");
      }
    }
    ctl.abort();
  } catch (err) {
    if (!(err instanceof Error && err.name === "AbortError")) throw err;
  } finally {
    clearTimeout(timer);
  }
  return events;
}

describe("events", () => {
  it("streams work and target events of one project over SSE, and resumes after Last-Event-ID", async () => {
    const p = uniqueProjectId();
    const admin = client(weft.url, ADMIN);
    const auth = { authorization: `Bearer ${ADMIN}` };
    const url = `${weft.url}/api/events?projectId=${p}`;
    expect((await fetch(url)).status).toBe(401);
    expect(
      (
        await fetch(`${weft.url}/api/events?projectId=${p2}`, {
          headers: { authorization: `Bearer ${LIMITED}` },
        })
      ).status,
    ).toBe(403);
    const live = readEvents(url, auth, (ev) =>
      ev.some((e) => e.event === "work" && e.data.type === "cancelled"),
    );
    // Let the stream attach, then act.
    await new Promise((r) => setTimeout(r, 500));
    await admin("POST", `/api/targets?projectId=${p}`, {
      name: "t",
      mechanism: "local",
      agentType: "claude-code",
      capabilities: ["ts"],
      config: { command: "/bin/true" },
      enabled: false,
    });
    const workId = (await admin("POST", `/api/work?projectId=${p}`, { description: "x", capability: "ts" }))
      .body.workId;
    await admin("POST", `/api/work/${workId}/cancel?projectId=${p}`, {});
    const events = await live;
    expect(events.find((e) => e.event === "target")?.data.type).toBe("created");
    const work = events
      .filter((e) => e.event === "work" && e.data.data.workId === workId)
      .map((e) => e.data.type);
    expect(work).toEqual(["offered", "cancelled"]);
    // Resume: everything after the first event comes again.
    const first = events[0];
    if (!first) throw new Error("no events");
    const replay = await readEvents(
      url,
      { ...auth, "last-event-id": first.id },
      (ev) => ev.length >= events.length - 1,
    );
    expect(replay.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
  });

  it("mirrors a burst of submissions as one event each, every item's events in order", async () => {
    const p = uniqueProjectId();
    const admin = client(weft.url, ADMIN);
    const auth = { authorization: `Bearer ${ADMIN}` };
    const url = `${weft.url}/api/events?projectId=${p}`;
    const offered = (ev: Array<{ event: string; data: { type: string } }>) =>
      ev.filter((e) => e.event === "work" && e.data.type === "offered").length;
    const cancels = (ev: Array<{ event: string; data: { type: string } }>) =>
      ev.filter((e) => e.event === "work" && e.data.type === "cancelled").length;
    const total = 80;
    const live = readEvents(url, auth, (ev) => offered(ev) >= total && cancels(ev) >= 10);
    // Let the stream attach, then act.
    await new Promise((r) => setTimeout(r, 500));
    const ids: string[] = [];
    for (let round = 0; round < 4; round++) {
      const burst = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          admin("POST", `/api/work?projectId=${p}`, { description: `b${round}-${i}`, capability: "ts" }),
        ),
      );
      ids.push(...burst.map((r) => r.body.workId as string));
    }
    const cancelled = ids.slice(0, 10);
    for (const id of cancelled) await admin("POST", `/api/work/${id}/cancel?projectId=${p}`, {});
    const events = await live;
    const work = events.filter((e) => e.event === "work");
    expect(offered(work)).toBe(ids.length);
    expect(cancels(work)).toBe(cancelled.length);
    for (const id of cancelled)
      expect(work.filter((e) => e.data.data.workId === id).map((e) => e.data.type)).toEqual([
        "offered",
        "cancelled",
      ]);
    // The stream keeps the ledger's order: revisions only grow.
    const revisions = work.map((e) => e.data.data.revision as number);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
  });
});
