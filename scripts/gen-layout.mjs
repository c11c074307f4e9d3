#!/usr/bin/env node
// Rewrites the NATS layout table in docs/architecture.md from packages/protocol (run after `pnpm build`).
import { readFileSync, writeFileSync } from "node:fs";
import { natsLayoutMarkdown } from "../packages/protocol/dist/index.js";

const path = new URL("../docs/architecture.md", import.meta.url);
const doc = readFileSync(path, "utf8");
const start = "<!-- layout:start -->";
const end = "<!-- layout:end -->";
const i = doc.indexOf(start);
const j = doc.indexOf(end);
if (i < 0 || j < i) throw new Error("docs/architecture.md lacks the layout markers");
writeFileSync(path, `${doc.slice(0, i + start.length)}\n${natsLayoutMarkdown()}\n${doc.slice(j)}`);
