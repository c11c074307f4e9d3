// Bundles `loominal hook` (dist/hook-main.js and everything it imports: the NATS client, zod, the
// Loominal packages) into dist/hook.bundle.js, which dist/bin.js loads for `hook <event>`. One file
// loads several times faster than the modules behind it, and a hook runs on every prompt and tool call.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: [join(root, "dist", "hook-main.js")],
  outfile: join(root, "dist", "hook.bundle.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  legalComments: "linked",
  // CommonJS dependencies (the NATS client, pino) call require(); an ES module has none of its own.
  banner: {
    js: 'import { createRequire as __loominalRequire } from "node:module"; const require = __loominalRequire(import.meta.url);',
  },
  logLevel: "warning",
});
