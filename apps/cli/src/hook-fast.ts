import { readFileSync } from "node:fs";
import { isatty } from "node:tty";
import { askSessionWarp } from "@loominal/warp/hook-client";

/**
 * The first step of `loominal hook <event>`: reads the hook input and asks the Warp server of this Claude
 * Code session for the answer over its socket, loading nothing but Node's own modules and the small
 * client. Returns true when it printed the answer; otherwise the input read, for the hook to do the work
 * itself (no server, no answer in time, a malformed one).
 */
export async function hookViaSessionWarp(event: string): Promise<{ answered: true } | { input: string }> {
  let input = "";
  try {
    input = isatty(0) ? "" : readFileSync(0, "utf8");
  } catch {
    // No or unreadable input: run with defaults rather than disturb the session.
  }
  const cwd = process.cwd();
  const answer = await askSessionWarp({ event, input, cwd });
  if (!answer) return { input };
  for (const note of answer.stderr) process.stderr.write(`${note}\n`);
  if (answer.stdout !== undefined) process.stdout.write(`${answer.stdout}\n`);
  return { answered: true };
}
