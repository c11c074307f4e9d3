import { readFileSync } from "node:fs";
import { type LoominalConfig, loadConfig } from "@loominal/fabric";
import {
  HOOK_CONNECT_MS,
  HOOK_EVENTS,
  type HookAnswer,
  type HookEvent,
  hookReminders,
  natsUnreachableAnswer,
  parseHookEvent,
  parseHookInput,
} from "@loominal/warp";
import type { CliContext } from "./context.js";
import { quickConnect, sessionAgent } from "./session-agent.js";

export { HOOK_EVENTS, type HookEvent };

/** Prints a hook's answer: notes on stderr, the hook output (if any) on stdout. */
export function printHookAnswer(ctx: CliContext, answer: HookAnswer): void {
  for (const note of answer.stderr) ctx.err(note);
  if (answer.stdout !== undefined) ctx.out(answer.stdout);
}

/**
 * Runs one Claude Code hook in this process (connecting to NATS itself): what `loominal hook` does when the
 * Warp server of its session does not answer for it (src/hook-fast.ts). Only an unknown event throws;
 * otherwise it never fails or blocks the session (a problem is a note on stderr). `inputText` is the hook
 * input when stdin was read already.
 * Kept apart from the command tree so that `loominal hook` loads as little as it can.
 */
export async function runHook(ctx: CliContext, eventArg: string, inputText?: string): Promise<void> {
  const event = parseHookEvent(eventArg);
  let text = inputText;
  if (text === undefined) {
    try {
      text = process.stdin.isTTY ? "" : readFileSync(0, "utf8");
    } catch {
      // No or unreadable input: run with defaults rather than disturb the session.
      text = "";
    }
  }
  const input = parseHookInput(text);
  const cwd = input.cwd ?? ctx.cwd;
  let config: LoominalConfig;
  try {
    config = loadConfig({ cwd, env: ctx.env });
  } catch (err) {
    ctx.err(`loominal hook: ${err instanceof Error ? err.message : String(err)}; nothing checked.`);
    return;
  }
  const fabric = await quickConnect(config, HOOK_CONNECT_MS);
  if (!fabric) {
    printHookAnswer(ctx, natsUnreachableAnswer(config.nats.servers, event));
    return;
  }
  try {
    const { agentId } = sessionAgent(config);
    printHookAnswer(ctx, await hookReminders({ fabric, config, agentId, event, input, cwd }));
  } catch (err) {
    ctx.err(`loominal hook: ${err instanceof Error ? err.message : String(err)}; nothing shown.`);
  } finally {
    await fabric.close();
  }
}
