import { afterEach, describe, expect, it } from "vitest";
import { fakeGithub, GITHUB_TOKEN as TOKEN } from "./fake-peers.test-helper.js";
import { GithubActionsMechanism } from "./github-actions.js";
import { agentEnv, capturedLogger, targetRecord } from "./mechanisms.test-helper.js";

describe("github-actions mechanism", () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  const config = (apiUrl: string, extra: Record<string, unknown> = {}) => ({
    owner: "acme",
    repo: "agents",
    workflow: "agent.yml",
    ref: "main",
    tokenEnv: "GH_AGENT_TOKEN",
    apiUrl,
    inputs: { model: "sonnet" },
    envInputs: { nats_url: "NATS_URL" },
    pollMs: 50,
    findRunTimeoutMs: 10_000,
    ...extra,
  });

  it("dispatches with the spin-up id, finds each of two concurrent dispatches' own run, reports and cancels it", async () => {
    const gh = await fakeGithub();
    closers.push(gh.peer.close);
    const { logger, lines } = capturedLogger();
    const m = new GithubActionsMechanism({ logger, secrets: { GH_AGENT_TOKEN: TOKEN } });
    const target = targetRecord("github-actions", m.validateConfig(config(gh.peer.url)));
    expect(await m.test(target)).toMatchObject({
      ok: true,
      message: expect.stringMatching(/readable and active/),
    });

    const [a, b] = await Promise.all([
      m.start({ spinUpId: "aaaa1111", target, env: agentEnv("aaaa1111") }),
      m.start({ spinUpId: "bbbb2222", target, env: agentEnv("bbbb2222") }),
    ]);
    expect(gh.dispatches).toContainEqual({
      ref: "main",
      inputs: { model: "sonnet", loominal_spinup_id: "aaaa1111", nats_url: "nats://127.0.0.1:4222" },
    });
    const titleOf = (id: unknown) => gh.runs.find((r) => r.id === id)?.display_title;
    expect(titleOf(a?.runId)).toBe("loominal aaaa1111");
    expect(titleOf(b?.runId)).toBe("loominal bbbb2222");
    expect(a?.runId).not.toBe(b?.runId);

    if (!a || !b) throw new Error("no handles");
    expect(await m.status(a)).toMatchObject({ state: "pending", message: expect.stringMatching(/queued/) });
    await m.stop(a, { graceMs: 1_000 });
    expect(await m.status(a)).toMatchObject({ state: "failed", message: expect.stringMatching(/cancelled/) });
    expect(await m.status(b)).toMatchObject({ state: "pending" });
    // Cancelling a completed run (409) is not an error.
    await m.stop(a, { graceMs: 1_000 });
    expect(JSON.stringify([a, b]) + lines.join("")).not.toContain(TOKEN);
  });

  it("leaves a run not yet listed to status and stop, which find it by the spin-up id later", async () => {
    const gh = await fakeGithub();
    closers.push(gh.peer.close);
    const m = new GithubActionsMechanism({
      logger: capturedLogger().logger,
      secrets: { GH_AGENT_TOKEN: TOKEN },
    });
    const target = targetRecord(
      "github-actions",
      m.validateConfig(config(gh.peer.url, { findRunTimeoutMs: 0 })),
    );
    const h = await m.start({ spinUpId: "cccc3333", target, env: agentEnv("cccc3333") });
    expect(h.runId).toBeUndefined();
    expect(await m.status(h)).toMatchObject({
      state: "pending",
      message: "the dispatched run is not listed yet",
    });
    expect(await m.status(h)).toMatchObject({
      state: "pending",
      message: expect.stringMatching(/^run \d+ is queued/),
    });
    await m.stop(h, { graceMs: 1_000 });
    expect(gh.runs[0]).toMatchObject({ display_title: "loominal cccc3333", conclusion: "cancelled" });
  });

  it("reports a rejected token without echoing it, and a missing token variable by name", async () => {
    const gh = await fakeGithub();
    closers.push(gh.peer.close);
    const wrong = new GithubActionsMechanism({
      logger: capturedLogger().logger,
      secrets: { GH_AGENT_TOKEN: "ghp_wrong_token_value" },
    });
    const target = targetRecord("github-actions", wrong.validateConfig(config(gh.peer.url)));
    const err = await wrong
      .start({ spinUpId: "dddd4444", target, env: agentEnv("dddd4444") })
      .catch((e: Error) => e);
    expect(err).toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(/HTTP 401.*GH_AGENT_TOKEN was rejected/),
    });
    expect((err as Error).message).not.toContain("ghp_wrong_token_value");
    expect(gh.dispatches).toHaveLength(0);
    const none = new GithubActionsMechanism({ logger: capturedLogger().logger, secrets: {} });
    expect((await none.test(target)).message).toMatch(/GH_AGENT_TOKEN is not set/);
    const missing = targetRecord(
      "github-actions",
      wrong.validateConfig(config(gh.peer.url, { workflow: "nope.yml" })),
    );
    const ok = new GithubActionsMechanism({
      logger: capturedLogger().logger,
      secrets: { GH_AGENT_TOKEN: TOKEN },
    });
    expect((await ok.test(missing)).message).toMatch(/HTTP 404.*check owner, repo and workflow/);
  });
});
