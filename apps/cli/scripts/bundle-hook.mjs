// Bundles `loominal hook` into two CommonJS files (CommonJS: V8's code cache is open to scripts, not
// modules, and Node starts a script faster than an ES module):
// - dist/hook.cjs, the command Claude Code runs (`node dist/hook.cjs <event>`): dist/hook-entry.js, which
//   asks the Warp server of the session over its socket and loads nothing else (a few KB);
// - dist/hook.bundle.cjs, what a hook runs when no server answers: dist/hook-main.js and everything it
//   imports (the NATS client, zod, the Loominal packages), loaded with V8's code cache
//   (src/hook-loader.ts). One file loads several times faster than the modules behind it.
// It also copies hook.sh to dist/: the shell hook, which asks the Warp server with bash builtins alone and
// runs dist/hook.cjs only when that server does not answer.
import { chmodSync, copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const common = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minify: true,
  legalComments: "linked",
  logLevel: "warning",
};

await build({
  ...common,
  entryPoints: [join(root, "dist", "hook-main.js")],
  outfile: join(root, "dist", "hook.bundle.cjs"),
});
await build({
  ...common,
  entryPoints: [join(root, "dist", "hook-entry.js")],
  outfile: join(root, "dist", "hook.cjs"),
});
copyFileSync(join(root, "hook.sh"), join(root, "dist", "hook.sh"));
chmodSync(join(root, "dist", "hook.sh"), 0o755);
