// Bundles `loominal hook` (dist/hook-main.js and everything it imports: the NATS client, zod, the
// Loominal packages) into dist/hook.bundle.cjs, which dist/bin.js loads for `hook <event>` (with V8's code
// cache, src/hook-loader.ts). One file loads several times faster than the modules behind it, and a hook
// runs on every prompt and tool call. CommonJS, because V8's code cache is open to scripts, not modules.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: [join(root, "dist", "hook-main.js")],
  outfile: join(root, "dist", "hook.bundle.cjs"),
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minify: true,
  legalComments: "linked",
  logLevel: "warning",
});
