#!/usr/bin/env node
// Runs every benchmark in bench/ one after another (or those named on the command line) and prints their
// JSON lines. Usage: pnpm bench [name…]   e.g. pnpm bench warp-work pattern-recall
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const wanted = process.argv.slice(2);
const all = readdirSync(dir)
  .filter((f) => f.endsWith(".mjs") && f !== "lib.mjs" && f !== "run.mjs")
  .map((f) => f.slice(0, -4))
  .sort();
const chosen = wanted.length > 0 ? wanted : all;
let failed = 0;
for (const name of chosen) {
  if (!all.includes(name)) {
    console.error(`no benchmark named ${name}; choose from: ${all.join(", ")}`);
    process.exit(2);
  }
  process.stderr.write(`# ${name}\n`);
  const r = spawnSync(process.execPath, [`${dir}${name}.mjs`], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
