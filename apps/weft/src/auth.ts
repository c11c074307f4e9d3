import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@loominal/fabric";
import { tokenIdentity } from "./audit.js";
import type { ApiToken } from "./config.js";
import { WeftHttpError } from "./errors.js";

/** The file a Weft with no configured token writes its generated admin token to (mode 0600). */
export const TOKEN_FILE = "weft-token";

/**
 * Who is calling: an admin, or a token limited to some projects. `id` names the caller in audit records
 * and logs (a token's fingerprint, never the token).
 */
export type Principal =
  | { kind: "admin"; id: string }
  | { kind: "project"; projects: readonly string[]; id: string };

/**
 * The tokens Weft accepts. With none configured it generates an admin token (or reuses the one it
 * generated before), writes it to `<dataDir>/weft-token` with mode 0600 and logs the path, never the
 * token: Weft never runs without auth.
 */
export function resolveTokens(
  configured: ApiToken[],
  dataDir: string,
  logger: Logger,
): { tokens: ApiToken[]; tokenFile?: string } {
  if (configured.length > 0) return { tokens: configured };
  const path = join(dataDir, TOKEN_FILE);
  let token: string | undefined;
  if (existsSync(path)) {
    const existing = readFileSync(path, "utf8").trim();
    if (existing.length >= 16) token = existing;
  }
  if (!token) {
    token = randomBytes(24).toString("hex");
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path, `${token}\n`, { mode: 0o600 });
  }
  chmodSync(path, 0o600);
  logger.info(
    { tokenFile: path },
    "WEFT_API_TOKENS is not set: generated an admin token; read it from this file",
  );
  return { tokens: [{ kind: "admin", token }], tokenFile: path };
}

/** Compares tokens through their SHA-256 digests so the time taken says nothing about either. */
function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** Who a configured token acts as. */
export function principalOf(t: ApiToken): Principal {
  return t.kind === "admin"
    ? { kind: "admin", id: tokenIdentity("admin", t.token) }
    : { kind: "project", projects: [...t.projects], id: tokenIdentity("project", t.token) };
}

/** How many accepted tokens TokenAuthenticator remembers (each is a configured token). */
export const ACCEPTED_TOKEN_CACHE = 64;

/**
 * Checks bearer tokens in constant time against every configured token.
 *
 * A token once accepted is remembered (at most ACCEPTED_TOKEN_CACHE of them, only tokens that matched a
 * configured one), so a client sending the same token on every request skips the digest and compare. A
 * token not remembered always takes the constant-time path; the lookup itself compares the given string
 * with a remembered one only when their (per-process seeded) hashes collide, so its timing says nothing
 * useful about a configured token. Tokens are fixed at start, so nothing remembered can go stale.
 */
export class TokenAuthenticator {
  #tokens: Array<{ digest: Buffer; principal: Principal }>;
  #accepted = new Map<string, Principal>();

  constructor(tokens: ApiToken[]) {
    this.#tokens = tokens.map((t) => ({ digest: digest(t.token), principal: principalOf(t) }));
  }

  /** The principal of a token, or undefined. Every configured token is compared, whatever matches. */
  authenticate(token: string): Principal | undefined {
    const known = this.#accepted.get(token);
    if (known) return known;
    const given = digest(token);
    let found: Principal | undefined;
    for (const t of this.#tokens) if (timingSafeEqual(given, t.digest) && !found) found = t.principal;
    // Only accepted tokens are remembered (so refused guesses cannot fill it): one entry per configured
    // token at most, and none past the bound.
    if (found && this.#accepted.size < ACCEPTED_TOKEN_CACHE) this.#accepted.set(token, found);
    return found;
  }

  /** The principal of an `Authorization: Bearer …` header; throws 401 otherwise. */
  fromHeader(header: string | undefined): Principal {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1])
      throw new WeftHttpError(
        401,
        "unauthorized",
        "send Authorization: Bearer <token> (see WEFT_API_TOKENS)",
      );
    const principal = this.authenticate(m[1]);
    if (!principal)
      throw new WeftHttpError(401, "unauthorized", "the bearer token is not one this Weft accepts");
    return principal;
  }
}

/**
 * The project a request acts on: `?projectId=` (validated by the caller), or the only project of a
 * token limited to exactly one. Throws 400 when none can be chosen, 403 when the token may not use it.
 */
export function projectFor(principal: Principal, requested: string | undefined): string {
  if (requested === undefined) {
    if (principal.kind === "project" && principal.projects.length === 1 && principal.projects[0])
      return principal.projects[0];
    throw new WeftHttpError(400, "invalid_input", "projectId is required: pass ?projectId=<project>", {
      field: "projectId",
    });
  }
  assertProjectAccess(principal, requested);
  return requested;
}

export function assertProjectAccess(principal: Principal, projectId: string): void {
  if (principal.kind === "project" && !principal.projects.includes(projectId))
    throw new WeftHttpError(403, "forbidden", `this token may not act on project ${projectId}`, {
      projectId,
    });
}

/** Target mutations (they run commands on Weft's host) need an admin token. */
export function assertAdmin(principal: Principal, action: string): void {
  if (principal.kind !== "admin")
    throw new WeftHttpError(
      403,
      "forbidden",
      `${action} needs an admin token; project tokens may not ${action}`,
    );
}
