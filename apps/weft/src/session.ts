import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { type Principal, principalOf } from "./auth.js";
import type { ApiToken } from "./config.js";

/** The dashboard's session cookie. */
export const SESSION_COOKIE = "weft_session";
/** How long a dashboard session lasts, in ms. */
export const SESSION_TTL_MS = 12 * 3_600_000;
const VERSION = "v1";

/** A verified session: who it acts for and the CSRF token its unsafe requests must carry. */
export interface Session {
  principal: Principal;
  csrfToken: string;
  expiresAtMs: number;
}

interface Key {
  key: Buffer;
  principal: Principal;
}

function mac(key: Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text, "utf8").digest();
}

/**
 * Dashboard sessions as signed, opaque cookies: `v1.<expiry>.<nonce>.<mac>`, where the MAC is an
 * HMAC-SHA256 under a key derived from the API token that logged in. The cookie carries neither the token
 * nor anything derived from it alone; any Weft instance with the same tokens verifies it, and removing a
 * token from WEFT_API_TOKENS ends its sessions. The CSRF token is a second MAC over the nonce, so it is
 * bound to the session and needs no server-side state either.
 */
export class SessionSigner {
  #keys: Key[];

  constructor(tokens: ApiToken[]) {
    this.#keys = tokens.map((t) => ({
      key: mac(Buffer.from(t.token, "utf8"), "loominal weft dashboard session"),
      principal: principalOf(t),
    }));
  }

  /**
   * A new session for an API token (undefined when Weft does not accept the token): the cookie value to
   * set, and the session it stands for.
   */
  issue(token: string, nowMs = Date.now()): { cookie: string; session: Session } | undefined {
    const given = mac(Buffer.from(token, "utf8"), "loominal weft dashboard session");
    let found: Key | undefined;
    for (const k of this.#keys) if (timingSafeEqual(given, k.key) && !found) found = k;
    if (!found) return undefined;
    const expiresAtMs = nowMs + SESSION_TTL_MS;
    const body = `${VERSION}.${expiresAtMs.toString(36)}.${randomBytes(16).toString("base64url")}`;
    const cookie = `${body}.${mac(found.key, body).toString("base64url")}`;
    return { cookie, session: this.#session(found, body, expiresAtMs) };
  }

  /** The session a cookie value stands for, or undefined (malformed, forged, expired or of a removed token). */
  verify(cookie: string, nowMs = Date.now()): Session | undefined {
    const parts = cookie.split(".");
    if (parts.length !== 4 || parts[0] !== VERSION) return undefined;
    const [, expiry = "", nonce = "", signature = ""] = parts;
    const expiresAtMs = Number.parseInt(expiry, 36);
    if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs <= nowMs) return undefined;
    const given = Buffer.from(signature, "base64url");
    if (given.length !== 32) return undefined;
    const body = `${VERSION}.${expiry}.${nonce}`;
    let found: Key | undefined;
    for (const k of this.#keys) if (timingSafeEqual(given, mac(k.key, body)) && !found) found = k;
    return found ? this.#session(found, body, expiresAtMs) : undefined;
  }

  /** Whether a CSRF token is the one of this session (constant time). */
  csrfMatches(session: Session, token: string | undefined): boolean {
    if (token === undefined) return false;
    const a = Buffer.from(token, "utf8");
    const b = Buffer.from(session.csrfToken, "utf8");
    return a.length === b.length && timingSafeEqual(a, b);
  }

  #session(k: Key, body: string, expiresAtMs: number): Session {
    return {
      principal: k.principal,
      csrfToken: mac(k.key, `csrf.${body}`).toString("base64url"),
      expiresAtMs,
    };
  }
}

/** The value of one cookie of a `Cookie` header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
