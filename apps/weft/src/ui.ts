import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Logger } from "@loominal/fabric";
import express, { type Request, type Response } from "express";
import type { TokenAuthenticator } from "./auth.js";
import { cookieValue, SESSION_COOKIE, SESSION_TTL_MS, type Session, type SessionSigner } from "./session.js";

/** Where the built dashboard assets are (`pnpm build` bundles `ui/` into `dist/ui/`). */
export const DASHBOARD_ASSETS_DIR = fileURLToPath(new URL("./ui/", import.meta.url));
const LOGIN_BODY_BYTES = 4 * 1024;

/** Headers every dashboard page and asset carries: nothing from elsewhere, never framed. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Not no-referrer: with it Chromium sends `Origin: null` on the login form, which the origin check refuses.
  "referrer-policy": "same-origin",
};

/** Whether a request comes from this origin: its Origin header, when it sends one, names this host. */
export function sameOrigin(req: Request): boolean {
  const origin = req.header("origin");
  if (origin === undefined) return true;
  return origin === `${req.protocol}://${req.header("host") ?? ""}`;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
}

function page(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/ui/assets/app.css">
${head}</head>
<body>
${body}
</body>
</html>
`;
}

function loginPage(message?: string): string {
  return page(
    "Loominal · log in",
    "",
    `<main class="login">
<h1>Loominal <span>dashboard</span></h1>
<form method="post" action="/ui/login">
<label for="token">Weft API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ""}
<p class="hint">A token of <code>WEFT_API_TOKENS</code>, or the one Weft wrote to <code>.loominal/weft-token</code>.</p>
</form>
</main>`,
  );
}

function appPage(csrfToken: string, assetsBuilt: boolean): string {
  if (!assetsBuilt)
    return page(
      "Loominal dashboard",
      "",
      `<main class="login"><h1>Loominal <span>dashboard</span></h1><p class="error">The dashboard's assets are not built: run <code>pnpm build</code>.</p></main>`,
    );
  return page(
    "Loominal dashboard",
    `<meta name="csrf-token" content="${escapeHtml(csrfToken)}">
<script type="module" src="/ui/assets/app.js"></script>
`,
    `<div id="app"></div>`,
  );
}

function sessionCookie(req: Request, value: string, maxAgeMs: number): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
    `Max-Age=${Math.floor(maxAgeMs / 1_000)}`,
    ...(req.secure ? ["Secure"] : []),
  ].join("; ");
}

/**
 * The dashboard at `/ui`: a login page (401) without credentials, the app with a session cookie or a
 * bearer token, and the bundled assets. Its data comes from the REST API and `/api/events`, which accept
 * the session cookie too (see authenticateRequest).
 */
export function dashboardRouter(deps: {
  auth: TokenAuthenticator;
  sessions: SessionSigner;
  logger: Logger;
  assetsDir?: string;
}): express.Router {
  const assetsDir = deps.assetsDir ?? DASHBOARD_ASSETS_DIR;
  const assetsBuilt = existsSync(`${assetsDir}/app.js`);
  if (!assetsBuilt)
    deps.logger.warn({ assetsDir }, "the dashboard's assets are not built; /ui shows how to build them");
  const router = express.Router();
  router.use("/ui", (_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  });
  router.use(
    "/ui/assets",
    express.static(assetsDir, { index: false, maxAge: 0, etag: true }),
    (_req: Request, res: Response) => {
      res.status(404).type("text/plain").send("no such dashboard asset");
    },
  );

  const sessionOf = (req: Request): Session | undefined => {
    const value = cookieValue(req.header("cookie"), SESSION_COOKIE);
    return value === undefined ? undefined : deps.sessions.verify(value);
  };

  router.get(["/ui", "/ui/"], (req: Request, res: Response) => {
    res.set("cache-control", "no-store");
    const header = req.header("authorization");
    if (header !== undefined) {
      // A bearer token works too (scripts, checks); the page's own requests then need a session.
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (m?.[1] && deps.auth.authenticate(m[1])) {
        res.status(200).type("html").send(appPage("", assetsBuilt));
        return;
      }
      res.status(401).type("html").send(loginPage("That token is not one this Weft accepts."));
      return;
    }
    const session = sessionOf(req);
    if (!session) {
      res.status(401).type("html").send(loginPage());
      return;
    }
    res.status(200).type("html").send(appPage(session.csrfToken, assetsBuilt));
  });

  router.post(
    "/ui/login",
    express.urlencoded({ extended: false, limit: LOGIN_BODY_BYTES }),
    (req: Request, res: Response) => {
      res.set("cache-control", "no-store");
      if (!sameOrigin(req)) {
        res.status(403).type("html").send(loginPage("Log in from this Weft's own login page."));
        return;
      }
      const token = (req.body as Record<string, unknown> | undefined)?.token;
      const issued = typeof token === "string" ? deps.sessions.issue(token.trim()) : undefined;
      if (!issued) {
        deps.logger.info({ ip: req.ip }, "dashboard login refused: unknown token");
        res.status(401).type("html").send(loginPage("That token is not one this Weft accepts."));
        return;
      }
      res.set("set-cookie", sessionCookie(req, issued.cookie, SESSION_TTL_MS));
      res.redirect(303, "/ui");
    },
  );

  router.post("/ui/logout", (req: Request, res: Response) => {
    if (!sameOrigin(req)) {
      res.status(403).type("html").send(loginPage("Log out from this Weft's own pages."));
      return;
    }
    res.set("set-cookie", sessionCookie(req, "", 0));
    res.redirect(303, "/ui");
  });
  return router;
}
