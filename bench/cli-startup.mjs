#!/usr/bin/env node
// Start-up cost of the `loominal` CLI: CPU (user + system, from /usr/bin/time) of one invocation per
// command, and the heavy modules each invocation loads. Every command runs in a fresh empty project
// directory with WEFT_URL pointing at a closed port (so `work ls` fails fast after loading what it needs),
// `node -e ""` in the same rotation as the floor any Node process pays. With --baseline, a second build
// runs alternately with the first, call by call, so both see the same machine load.
// Usage: node bench/cli-startup.mjs [--runs 5] [--bin apps/cli/dist/bin.js] [--baseline other/dist/bin.js]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { report } from "./lib.mjs";

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]?.replace(/^--/, ""), process.argv[i + 1]);
const runs = Math.min(Number(args.get("runs") ?? 5), 50);
const bins = {
  current: resolve(args.get("bin") ?? fileURLToPath(new URL("../apps/cli/dist/bin.js", import.meta.url))),
};
if (args.get("baseline")) bins.baseline = resolve(args.get("baseline"));
const COMMANDS = [
  ["--version"],
  ["--help"],
  ["version"],
  ["work", "ls"],
  ["mcp-config"],
  ["status"],
  ["nats", "status"],
];
/** Module families worth naming: what makes a start slow. */
const HEAVY = [
  "@nats-io/",
  "@modelcontextprotocol/",
  "zod",
  "@loominal/protocol",
  "@loominal/fabric",
  "@loominal/warp",
  "@loominal/pattern",
  "@loominal/shuttle",
];
const MAX_MS = 300_000;

const dir = mkdtempSync(join(tmpdir(), "loominal-cli-startup-"));
const project = join(dir, "project");
spawnSync("mkdir", ["-p", project]);
const log = join(dir, "modules.log");
// Records every module resolved (ESM, through a resolve hook on the hooks thread) and every CommonJS
// module in the require cache at exit.
writeFileSync(
  join(dir, "hooks.mjs"),
  `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.MODULE_LOG, r.url + "\\n");
  return r;
}\n`,
);
writeFileSync(
  join(dir, "record.mjs"),
  `import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";
register("./hooks.mjs", import.meta.url);
const cache = createRequire(import.meta.url).cache;
process.on("exit", () => appendFileSync(process.env.MODULE_LOG, Object.keys(cache).map((f) => pathToFileURL(f).href + "\\n").join("")));\n`,
);

const baseEnv = {
  ...process.env,
  WEFT_URL: "http://127.0.0.1:1",
  WEFT_TOKEN: "bench",
  NATS_URL: "nats://127.0.0.1:1",
};
for (const k of Object.keys(baseEnv)) if (k.startsWith("LOOMINAL_")) delete baseEnv[k];

/** CPU ms (user + system) of one run of `argv` under node. */
function cpuMs(argv) {
  const r = spawnSync("/usr/bin/time", ["-f", "CPU %U %S", process.execPath, ...argv], {
    cwd: project,
    env: baseEnv,
    encoding: "utf8",
    timeout: 30_000,
  });
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? "");
  if (!m) throw new Error(`no timing for ${argv.join(" ")}: ${r.stderr}`);
  return Math.round((Number(m[1]) + Number(m[2])) * 1000);
}

/** The package a module URL belongs to (workspace packages by their directory), or undefined for node: and the CLI's own. */
function packageOf(url) {
  if (!url.startsWith("file:")) return undefined;
  const path = fileURLToPath(url);
  const nm = path.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const ws = /\/packages\/([^/]+)\//.exec(path);
  return ws ? `@loominal/${ws[1]}` : undefined;
}

function modulesOf(bin, command) {
  rmSync(log, { force: true });
  spawnSync(process.execPath, ["--import", pathToFileURL(join(dir, "record.mjs")).href, bin, ...command], {
    cwd: project,
    env: { ...baseEnv, MODULE_LOG: log },
    timeout: 30_000,
  });
  const urls = new Set(readFileSync(log, "utf8").split("\n").filter(Boolean));
  urls.delete(pathToFileURL(join(dir, "hooks.mjs")).href);
  const perPackage = {};
  for (const url of urls) {
    const p = packageOf(url);
    if (p !== undefined && HEAVY.some((h) => p === h || p.startsWith(h)))
      perPackage[p] = (perPackage[p] ?? 0) + 1;
  }
  // Modules per heavy package: @loominal/warp with 2 is its hook client alone, @loominal/fabric with 3 its
  // config, host and proc modules.
  return { modules: urls.size, heavy: perPackage };
}

const started = Date.now();
const samples = new Map();
const add = (key, ms) => samples.set(key, [...(samples.get(key) ?? []), ms]);
for (let round = 0; round < runs && Date.now() - started < MAX_MS; round++) {
  add("node -e ''", cpuMs(["-e", ""]));
  for (const command of COMMANDS)
    for (const [name, bin] of Object.entries(bins))
      add(`${name}\0${command.join(" ")}`, cpuMs([bin, ...command]));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const floor = samples.get("node -e ''") ?? [];
report("cli.startup.node-floor", { runs: floor.length, cpuMsMedian: median(floor), cpuMs: floor });
for (const command of COMMANDS)
  for (const [name, bin] of Object.entries(bins)) {
    const xs = samples.get(`${name}\0${command.join(" ")}`) ?? [];
    report("cli.startup", {
      build: name,
      command: command.join(" "),
      runs: xs.length,
      cpuMsMedian: median(xs),
      cpuMs: xs,
      ...modulesOf(bin, command),
    });
  }
rmSync(dir, { recursive: true, force: true });
