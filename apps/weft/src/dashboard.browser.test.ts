// The dashboard in a real browser: Debian's Chromium driven by playwright-core against a running Weft,
// a real nats-server and a real loominal-agent. Everything is awaited with bounded polling, never timed.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric } from "@loominal/fabric";
import { randomId, warpConfigSchema } from "@loominal/protocol";
import {
  eventually,
  type HeadlessChromium,
  launchChromium,
  NatsServer,
  type Page,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { WorkQueue } from "@loominal/warp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_BIN, client, startWeftProcess, type WeftProcess } from "./weft.test-helper.js";

const ADMIN = "admin-token-browser-0123456789ab";
/** Screenshots land here (gitignored), for a person or CI to look at. */
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "artifacts");
/** Generous bounds for things that happen asynchronously (events, a leader pass); never a speed claim. */
const WAIT = { timeout: 30_000 };

const p = uniqueProjectId();
let nats: NatsServer;
let weft: WeftProcess;
let dir: { path: string; cleanup: () => void };
let browser: HeadlessChromium;
let fabric: Fabric;
let queue: WorkQueue;
const agents: ChildProcess[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  dir = tempDir("weft-browser-");
  weft = await startWeftProcess({ cwd: dir.path, env: { NATS_URL: nats.url, WEFT_API_TOKENS: ADMIN } });
  browser = await launchChromium();
  fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
  queue = new WorkQueue({
    fabric,
    projectId: p,
    agentId: randomId(),
    userId: randomId(),
    settings: { ...warpConfigSchema.parse({}).work, maxAttempts: 1 },
  });
});

afterAll(async () => {
  for (const a of agents) a.kill("SIGTERM");
  await Promise.all(
    agents.map((a) =>
      a.exitCode === null && a.signalCode === null
        ? new Promise((r) => a.once("exit", r))
        : Promise.resolve(),
    ),
  );
  await queue?.close();
  await fabric?.close();
  await browser?.close();
  await weft?.stop();
  await nats?.stop({ removeStore: true });
  dir?.cleanup();
});

async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

describe("dashboard in Chromium", () => {
  it("asks for a token, then shows an agent registering and work completing live, and retries a dead letter", async () => {
    const page = await browser.context.newPage();

    // Without a session: 401 and the login page.
    const first = await page.goto(`${weft.url}/ui#p=${p}`);
    expect(first?.status()).toBe(401);
    await expect(page.locator("form[action='/ui/login'] input[name=token]").count()).resolves.toBe(1);

    // A wrong token stays on the login page.
    await page.fill("input[name=token]", "wrong-token-0123456789abcdef");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await page.waitForSelector("text=not one this Weft accepts", WAIT);

    // Log in: the session cookie is HttpOnly and SameSite=Strict, and is not the token.
    await page.goto(`${weft.url}/ui#p=${p}`);
    await page.fill("input[name=token]", ADMIN);
    const [login] = await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    expect(login?.status()).toBe(200);
    const cookies = await browser.context.cookies(weft.url);
    const session = cookies.find((c) => c.name === "weft_session");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Strict");
    expect(session?.value).not.toContain(ADMIN);
    // Back on the project the address named (the login redirect drops the fragment).
    await page.evaluate((project) => {
      (globalThis as unknown as { location: { hash: string } }).location.hash = `p=${project}`;
    }, p);
    await page.waitForSelector("[data-connection=live]", WAIT);
    // Anything below that shows up must come without a reload: this marker would be gone.
    await page.evaluate(() => {
      (globalThis as unknown as { stillThisPage: boolean }).stillThisPage = true;
    });
    await page.waitForSelector("#agents >> text=No agent has registered", WAIT);

    // An agent registers: it appears.
    const agent = spawn(
      process.execPath,
      [AGENT_BIN, "--capability", "docs", "--agent-type", "custom", "--command", "echo written"],
      {
        cwd: dir.path,
        env: { ...process.env, NATS_URL: nats.url, LOOMINAL_PROJECT_ID: p, LOOMINAL_AGENT_NAME: "browser" },
        stdio: "ignore",
      },
    );
    agents.push(agent);
    const agentRow = page.locator("#agents tr[data-agent-id]");
    await agentRow.first().waitFor(WAIT);
    await expect(agentRow.first().textContent()).resolves.toContain("docs");

    // Work submitted to Weft is claimed and completed by that agent: the item shows completed.
    const api = client(weft.url, ADMIN);
    const sub = await api("POST", `/api/work?projectId=${p}`, {
      description: "write the dashboard docs",
      capability: "docs",
      taskId: "browser-docs",
    });
    expect(sub.status).toBe(201);
    await page.waitForSelector(`#work tr[data-work-id="${sub.body.workId}"][data-status=completed]`, WAIT);
    // Its history opens under it.
    await page.click(`#work tr[data-work-id="${sub.body.workId}"]`);
    await page.waitForSelector("#work .history >> text=completed", WAIT);

    // A dead letter: claimed and failed for good by an agent of another capability.
    const dead = await api("POST", `/api/work?projectId=${p}`, {
      description: "this one fails",
      capability: "flaky",
      taskId: "browser-flaky",
    });
    const claimed = await queue.claim({ capability: "flaky", timeoutMs: 10_000 });
    expect(claimed?.workId).toBe(dead.body.workId);
    await queue.fail(dead.body.workId, "broken on purpose", false);
    const letter = page.locator(`#dlq tr[data-work-id="${dead.body.workId}"]`);
    await letter.waitFor(WAIT);
    await expect(letter.textContent()).resolves.toContain("broken on purpose");
    await screenshot(page, "dashboard");

    // Retry from the page: the item goes back to its queue and leaves the dead-letter list.
    await letter.locator("button", { hasText: "Retry" }).click();
    await letter.waitFor({ state: "detached", ...WAIT });
    await eventually(
      async () => {
        const item = await api("GET", `/api/work/${dead.body.workId}?projectId=${p}`);
        expect(item.body.status).toBe("pending");
      },
      { timeoutMs: 30_000 },
    );
    await page.waitForSelector(`#work tr[data-work-id="${dead.body.workId}"][data-status=pending]`, WAIT);

    expect(
      await page.evaluate(() => (globalThis as unknown as { stillThisPage?: boolean }).stillThisPage),
    ).toBe(true);
    const shot = await screenshot(page, "dashboard-after-retry");
    expect(shot).toMatch(/dashboard-after-retry\.png$/);
    await page.close();
  }, 180_000);
});
