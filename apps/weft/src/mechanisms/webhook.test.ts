import { createHmac, timingSafeEqual } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { agentEnv, capturedLogger, httpPeer, sendJson, targetRecord } from "./mechanisms.test-helper.js";
import { WebhookMechanism } from "./webhook.js";

const SIGNING_KEY = "whsec-test-signing-key-0001";
const API_TOKEN = "tok-test-api-token-0002";

/** A receiver that checks the bearer token and the HMAC of the body, as a real webhook receiver would. */
async function receiver() {
  const started = new Map<string, string>();
  const stopped: string[] = [];
  const peer = await httpPeer((req, res) => {
    if (req.headers.authorization !== `Bearer ${API_TOKEN}`)
      return sendJson(res, 401, { error: "bad token" });
    const expected = Buffer.from(
      `sha256=${createHmac("sha256", SIGNING_KEY).update(req.body).digest("hex")}`,
    );
    const got = Buffer.from(String(req.headers["x-loominal-signature-256"] ?? ""));
    if (got.length !== expected.length || !timingSafeEqual(got, expected))
      return sendJson(res, 401, { error: `signature mismatch for ${req.headers.authorization}` });
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/start") {
      const body = JSON.parse(req.body) as { spinUpId: string };
      const id = `job-${started.size + 1}`;
      started.set(body.spinUpId, id);
      return sendJson(res, 202, { id });
    }
    if (path === "/stop") {
      const body = JSON.parse(req.body) as { spinUpId: string; remoteId?: string };
      if (!started.has(body.spinUpId)) return sendJson(res, 404, {});
      stopped.push(body.remoteId ?? "");
      started.delete(body.spinUpId);
      return sendJson(res, 200, {});
    }
    if (path === "/status") {
      const id = new URL(req.url, "http://x").searchParams.get("spinUpId") ?? "";
      return sendJson(
        res,
        200,
        started.has(id) ? { state: "running", message: started.get(id) } : { state: "gone" },
      );
    }
    if (path === "/health") return sendJson(res, 200, { ok: true });
    return sendJson(res, 404, {});
  });
  return { peer, started, stopped };
}

const config = (url: string, extra: Record<string, unknown> = {}) => ({
  url: `${url}/start`,
  secretHeaders: { Authorization: "HOOK_AUTH" },
  signingSecretEnv: "HOOK_SIGNING_KEY",
  stopUrl: `${url}/stop`,
  statusUrl: `${url}/status`,
  healthUrl: `${url}/health`,
  ...extra,
});

describe("webhook mechanism", () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it("starts, reports status and stops through a receiver that verifies the token and the signature", async () => {
    const { peer, started, stopped } = await receiver();
    closers.push(peer.close);
    const { logger, lines } = capturedLogger();
    const m = new WebhookMechanism({
      logger,
      secrets: { HOOK_AUTH: `Bearer ${API_TOKEN}`, HOOK_SIGNING_KEY: SIGNING_KEY },
    });
    const target = targetRecord("webhook", m.validateConfig(config(peer.url)));
    expect(await m.test(target)).toMatchObject({ ok: true });

    const handle = await m.start({ spinUpId: "s1", target, env: agentEnv("s1") });
    expect(handle.remoteId).toBe("job-1");
    expect(started.get("s1")).toBe("job-1");
    const sent = JSON.parse(peer.requests.find((r) => r.url === "/start")?.body ?? "{}");
    expect(sent).toMatchObject({
      spinUpId: "s1",
      targetId: target.targetId,
      env: { LOOMINAL_SPINUP_ID: "s1" },
    });
    expect(await m.status(handle)).toEqual({ state: "running", message: "job-1" });

    await m.stop(handle, { graceMs: 1_000 });
    expect(stopped).toEqual(["job-1"]);
    expect(await m.status(handle)).toMatchObject({ state: "gone" });
    // Stopping again: the receiver no longer knows it (404), which is not an error.
    await m.stop(handle, { graceMs: 1_000 });

    const all = JSON.stringify(handle) + lines.join("");
    expect(all).not.toContain(API_TOKEN);
    expect(all).not.toContain(SIGNING_KEY);
  });

  it("fills the body template with JSON-escaped values", async () => {
    const { peer } = await receiver();
    closers.push(peer.close);
    const m = new WebhookMechanism({
      logger: capturedLogger().logger,
      secrets: { HOOK_AUTH: `Bearer ${API_TOKEN}`, HOOK_SIGNING_KEY: SIGNING_KEY },
    });
    const target = targetRecord(
      "webhook",
      m.validateConfig(
        config(peer.url, {
          bodyTemplate:
            '{"spinUpId":"{{spinUpId}}","inputs":{"nats":"{{env.NATS_URL}}","note":"{{env.NOTE}}"}}',
        }),
      ),
    );
    await m.start({ spinUpId: "s2", target, env: { ...agentEnv("s2"), NOTE: 'say "hi"' } });
    const sent = JSON.parse(peer.requests.at(-1)?.body ?? "{}");
    expect(sent).toEqual({ spinUpId: "s2", inputs: { nats: "nats://127.0.0.1:4222", note: 'say "hi"' } });
  });

  it("reports a signature the receiver rejects, without echoing the secrets", async () => {
    const { peer, started } = await receiver();
    closers.push(peer.close);
    const m = new WebhookMechanism({
      logger: capturedLogger().logger,
      secrets: { HOOK_AUTH: `Bearer ${API_TOKEN}`, HOOK_SIGNING_KEY: "wrong-signing-key" },
    });
    const target = targetRecord("webhook", m.validateConfig(config(peer.url)));
    const err = await m.start({ spinUpId: "s3", target, env: agentEnv("s3") }).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe("forbidden");
    expect(err?.message).toMatch(/answered 401/);
    expect(err?.message).toMatch(/signingSecretEnv/);
    // The receiver quoted the Authorization header back: Weft redacts it.
    expect(err?.message).toContain("[redacted]");
    expect(err?.message).not.toContain(API_TOKEN);
    expect(started.size).toBe(0);
  });

  it("names a missing secret env variable, and refuses secrets inlined in headers", async () => {
    const m = new WebhookMechanism({ logger: capturedLogger().logger, secrets: {} });
    const target = targetRecord("webhook", m.validateConfig(config("http://127.0.0.1:9")));
    await expect(m.start({ spinUpId: "s4", target, env: agentEnv("s4") })).rejects.toThrow(
      /HOOK_AUTH is not set/,
    );
    expect(await m.test(target)).toMatchObject({ ok: false });
    expect(() =>
      m.validateConfig({ url: "http://127.0.0.1:9/x", headers: { Authorization: "Bearer abc" } }),
    ).toThrow(/config\.headers.*secretHeaders/);
    expect(() => m.validateConfig({ url: "ftp://x" })).toThrow(/config\.url/);
  });

  it("reports an unreachable endpoint and a receiver that does not answer in time", async () => {
    const hanging = await httpPeer(() => undefined);
    closers.push(hanging.close);
    const m = new WebhookMechanism({
      logger: capturedLogger().logger,
      secrets: { HOOK_AUTH: "x-auth-value", HOOK_SIGNING_KEY: SIGNING_KEY },
    });
    const slow = targetRecord("webhook", m.validateConfig(config(hanging.url, { timeoutMs: 300 })));
    await expect(m.start({ spinUpId: "s5", target: slow, env: agentEnv("s5") })).rejects.toMatchObject({
      code: "timeout",
      message: expect.stringMatching(/no answer within 300 ms/),
    });
    const closed = await httpPeer(() => undefined);
    const url = closed.url;
    await closed.close();
    const gone = targetRecord("webhook", m.validateConfig(config(url)));
    const health = await m.test(gone);
    expect(health.ok).toBe(false);
    expect(health.message).toMatch(/health: GET .*failed/);
  });
});
