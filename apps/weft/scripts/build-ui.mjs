// Bundles the dashboard (ui/src, Preact) into dist/ui: app.js and app.css, served by Weft at /ui/assets.
// Nothing is loaded from elsewhere at run time, so the dashboard works on a machine with no internet.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: { app: join(root, "ui", "src", "main.tsx") },
  outdir: join(root, "dist", "ui"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: "linked",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "linked",
  logLevel: "warning",
});
