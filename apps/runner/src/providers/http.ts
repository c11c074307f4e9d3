import { kindOfStatus, ProviderError, parseRetryAfter } from "./types.js";

/**
 * POSTs JSON and returns the parsed answer; maps every failure to a ProviderError of the right kind.
 * The error message carries the provider's own error text (never the request, which holds the key).
 */
export async function postJson(
  provider: string,
  url: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new ProviderError("outage", `${provider}: cannot reach ${new URL(url).origin}: ${describe(err)}`, {
      cause: err,
    });
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new ProviderError("outage", `${provider}: the answer was cut off: ${describe(err)}`, {
      cause: err,
    });
  }
  if (!res.ok) {
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    throw new ProviderError(
      kindOfStatus(res.status),
      `${provider}: HTTP ${res.status}: ${errorText(text)}`,
      retryAfterMs === undefined ? { status: res.status } : { status: res.status, retryAfterMs },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProviderError("outage", `${provider}: the answer is not JSON: ${text.slice(0, 200)}`, {
      status: res.status,
    });
  }
}

/** The message inside the error bodies both APIs use (`{error: {message}}`), else the start of the body. */
function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown; type?: unknown } };
    const m = parsed.error?.message;
    const t = parsed.error?.type;
    if (typeof m === "string") return typeof t === "string" ? `${t}: ${m}` : m;
  } catch {
    // Not JSON: show the text.
  }
  return body.slice(0, 200);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
