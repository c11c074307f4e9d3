// Every target mutation is audited: who (the token's fingerprint), when, what changed, on a `target`
// event and in Weft's log, secrets redacted. A real `weft serve` process on a real nats-server.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger, Fabric, natsSettingsFromEnv } from "@loominal/fabric";
import { streams, subjects, weftEventSchema } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDACTED, redactConfig, targetChanges, tokenIdentity } from "./audit.js";
import { mcpOperations } from "./mcp/server.js";
import { client, startWeftProcess, type WeftProcess } from "./weft.test-helper.js";

const ADMIN = "audit-admin-token-0123456789abcdef";
const LIMITED = "audit-limited-token-0123456789abcdef";
const SECRET = "sk-live-do-not-log-0123456789";
const p1 = uniqueProjectId();
const fingerprint = (t: string) => createHash("sha256").update(t).digest("hex").slice(0, 12);

let nats: NatsServer;
let weft: WeftProcess;
let fabric: Fabric;
let dir: { path: string; cleanup: () => void };

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = tempDir("weft-audit-");
  const configFile = join(dir.path, "weft.yaml");
  writeFileSync(
    configFile,
    [
      "defaults: { healthCheckIntervalMs: 0 }",
      "targets:",
      `  - projectId: ${p1}`,
      "    name: from-file",
      "    mechanism: local",
      "    agentType: claude-code",
      "    capabilities: [ts]",
      "    config: { command: /bin/true }",
    ].join("\n"),
  );
  weft = await startWeftProcess({
    cwd: dir.path,
    env: { NATS_URL: nats.url, WEFT_API_TOKENS: `${ADMIN},${LIMITED}:${p1}`, WEFT_CONFIG: configFile },
  });
  const logger = createLogger({ name: "audit-test", level: "silent", destination: "stderr" });
  fabric = await Fabric.connect({
    nats: natsSettingsFromEnv({ NATS_URL: nats.url }),
    logger,
    name: "audit-test",
  });
});

afterAll(async () => {
  await fabric?.close();
  await weft?.stop();
  await nats?.stop({ removeStore: true });
  dir?.cleanup();
});

/** Every target event of the project so far, oldest first. */
async function targetEvents(projectId: string) {
  const jsm = await fabric.jsm();
  const info = await jsm.streams.info(streams.weftEvents(projectId));
  const events = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(streams.weftEvents(projectId), { seq }).catch(() => undefined);
    if (m?.subject === subjects.weftEvent(projectId, "target")) events.push(weftEventSchema.parse(m.json()));
  }
  return events;
}

describe("target audit", () => {
  it("records who created, changed, disabled, enabled and deleted a target, and what changed", async () => {
    const admin = client(weft.url, ADMIN);
    const created = await admin("POST", `/api/targets?projectId=${p1}`, {
      name: "box",
      mechanism: "local",
      agentType: "claude-code",
      capabilities: ["ts"],
      config: { command: "/bin/true", env: { API_TOKEN: SECRET, MODE: "fast" } },
    });
    expect(created.status).toBe(201);
    const updated = await admin("PUT", `/api/targets/box?projectId=${p1}`, {
      maxConcurrent: 7,
      config: { command: "/bin/true", env: { API_TOKEN: `${SECRET}-rotated`, MODE: "fast" } },
    });
    expect(updated.status).toBe(200);
    expect((await admin("POST", `/api/targets/box/disable?projectId=${p1}`)).status).toBe(200);
    expect((await admin("POST", `/api/targets/box/enable?projectId=${p1}`)).status).toBe(200);
    expect((await admin("DELETE", `/api/targets/box?projectId=${p1}`)).status).toBe(200);
    // A refused mutation (a project token) changes nothing and is not audited as a change.
    expect(
      (await client(weft.url, LIMITED)("POST", `/api/targets/from-file/disable?projectId=${p1}`)).status,
    ).toBe(403);

    const who = `admin-token:sha256:${fingerprint(ADMIN)}`;
    let events: Awaited<ReturnType<typeof targetEvents>> = [];
    await eventually(async () => {
      events = (await targetEvents(p1)).filter((e) => e.data.name === "box");
      expect(events.map((e) => e.type)).toEqual(["created", "updated", "disabled", "enabled", "deleted"]);
    });
    for (const e of events) {
      expect(e.data.audit).toMatchObject({
        action: e.type,
        actor: who,
        name: "box",
        targetId: created.body.targetId,
      });
      expect(Date.parse((e.data.audit as { at: string }).at)).not.toBeNaN();
    }
    const changes = (i: number) =>
      (events[i]?.data.audit as { changes: Array<Record<string, unknown>> } | undefined)?.changes;
    expect(changes(0)).toEqual(
      expect.arrayContaining([
        { field: "name", to: "box" },
        { field: "config.command", to: "/bin/true" },
        { field: "config.env.API_TOKEN", to: REDACTED },
        { field: "config.env.MODE", to: REDACTED },
      ]),
    );
    // The rotated secret shows as a change, not as a value.
    expect(changes(1)).toEqual([
      { field: "config.env.API_TOKEN", from: REDACTED, to: REDACTED },
      { field: "maxConcurrent", from: 3, to: 7 },
    ]);
    expect(changes(2)).toEqual([{ field: "enabled", from: true, to: false }]);
    expect(changes(3)).toEqual([{ field: "enabled", from: false, to: true }]);
    expect(changes(4)).toEqual(expect.arrayContaining([{ field: "name", from: "box" }]));

    // The file's target was created by the config file, at start.
    const fromFile = (await targetEvents(p1)).find((e) => e.data.name === "from-file");
    expect(fromFile?.data.audit).toMatchObject({
      action: "created",
      actor: expect.stringMatching(/^config-file:.*weft\.yaml$/),
    });
    expect((await targetEvents(p1)).filter((e) => e.data.name === "from-file")).toHaveLength(1);

    // The log has the same audit lines; neither the log nor the events hold a secret or a token.
    await eventually(() => {
      const audits = weft
        .output()
        .split("\n")
        .filter((l) => l.includes('"msg":"target audit"'))
        .map((l) => JSON.parse(l) as { audit: { action: string; actor: string; name: string } });
      expect(
        audits.filter((a) => a.audit.name === "box").map((a) => [a.audit.action, a.audit.actor]),
      ).toEqual(["created", "updated", "disabled", "enabled", "deleted"].map((a) => [a, who]));
    });
    const everything = weft.output() + JSON.stringify(await targetEvents(p1));
    for (const s of [SECRET, ADMIN, LIMITED]) expect(everything).not.toContain(s);
  });

  it("offers no target mutation over MCP or to NATS callers (admin tokens on REST only)", () => {
    const ops = mcpOperations().map((o) => o.id);
    for (const id of ["createTarget", "updateTarget", "deleteTarget", "enableTarget", "disableTarget"])
      expect(ops).not.toContain(id);
  });
});

describe("redaction", () => {
  it("keeps names and paths of secrets, and redacts values that may be secrets", () => {
    expect(
      redactConfig({
        privateKeyPath: "/keys/id",
        privateKeyEnv: "KEY",
        tokenEnv: "GH_TOKEN",
        secretHeaders: { Authorization: "HOOK_AUTH" },
        secretEnv: { API_KEY: { secretName: "keys", key: "api" } },
        headers: { "X-Team": "platform" },
        env: { ANYTHING: "value" },
        password: "hunter22",
        url: "https://user:pw@example.com/x?token=abc&mode=1",
        image: "ghcr.io/x/agent:1",
        args: ["--", "claude"],
      }),
    ).toEqual({
      privateKeyPath: "/keys/id",
      privateKeyEnv: "KEY",
      tokenEnv: "GH_TOKEN",
      secretHeaders: { Authorization: "HOOK_AUTH" },
      secretEnv: { API_KEY: { secretName: "keys", key: "api" } },
      headers: { "X-Team": REDACTED },
      env: { ANYTHING: REDACTED },
      password: REDACTED,
      url: `https://${encodeURIComponent(REDACTED)}:${encodeURIComponent(REDACTED)}@example.com/x?token=${encodeURIComponent(REDACTED)}&mode=1`,
      image: "ghcr.io/x/agent:1",
      args: ["--", "claude"],
    });
  });

  it("names a token by kind and fingerprint only", () => {
    expect(tokenIdentity("project", "abc")).toBe(`project-token:sha256:${fingerprint("abc")}`);
    expect(targetChanges(undefined, undefined)).toEqual([]);
  });
});
