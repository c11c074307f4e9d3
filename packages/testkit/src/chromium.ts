import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export type { BrowserContext, Page } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`; `./loominal test` installs it when missing). */
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/** Flags for a quiet, offline, sandbox-less headless Chromium (tests run as root in containers). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
] as const;

export interface HeadlessChromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/**
 * Starts Debian's Chromium headless through playwright-core with a fresh profile directory. Fails with
 * what to install when the binary is missing (no browser is ever downloaded).
 */
export async function launchChromium(): Promise<HeadlessChromium> {
  if (!existsSync(CHROMIUM_BIN))
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_BIN}: run the tests with \`./loominal test\` (it installs Debian's chromium), or \`apt-get install chromium\`, or set CHROMIUM_BIN`,
    );
  const profile = mkdtempSync(join(tmpdir(), "loom-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: [...CHROMIUM_FLAGS],
    viewport: { width: 1400, height: 1000 },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
