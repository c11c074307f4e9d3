import { eventually, type TestClient, type ToolCallOutcome } from "@loominal/testkit";

/**
 * Calls a tool of a freshly started server, retrying while it answers `nats_unavailable` (it may still
 * be connecting), for up to 15 s. Returns the outcome, error or not.
 */
export function callWhenConnected(
  client: TestClient,
  tool: string,
  args: Record<string, unknown> = {},
): Promise<ToolCallOutcome> {
  return eventually(
    async () => {
      const out = await client.call(tool, args);
      if (out.isError && /nats_unavailable/.test(out.text)) throw new Error(out.text);
      return out;
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
}

/** Like callWhenConnected, but an error result fails the test; returns the structured result. */
export async function callOk(
  client: TestClient,
  tool: string,
  args: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const r = await callWhenConnected(client, tool, args);
  if (r.isError) throw new Error(`${tool}: ${r.text}`);
  return r.structured ?? {};
}
