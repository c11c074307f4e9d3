#!/usr/bin/env node
// The command a loominal-agent runs per Shuttle subtask in scenario 06: reads the item (JSON on stdin),
// checks the outputs of its dependencies exist, waits STEP_MS (so a worker can be killed while it holds the
// item) and writes its Markdown output where the orchestration asked.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const item = JSON.parse(input);
const ctx = item.contextData?.shuttle;
if (!ctx?.outputPath) {
  process.stderr.write("not a Shuttle subtask: no contextData.shuttle.outputPath\n");
  process.exit(2);
}
const missing = ctx.dependencies.filter((d) => !existsSync(d.outputPath)).map((d) => d.subtaskId);
if (missing.length > 0) {
  process.stderr.write(`dependencies without output: ${missing.join(", ")}\n`);
  process.exit(75);
}
await new Promise((r) => setTimeout(r, Number(process.env.STEP_MS ?? 800)));
mkdirSync(dirname(ctx.outputPath), { recursive: true });
writeFileSync(
  ctx.outputPath,
  `# ${ctx.title}\n\nWritten by agent process ${process.ppid} for ${ctx.subtaskId}.\n`,
);
process.stdout.write(`wrote ${ctx.outputPath}\n`);
