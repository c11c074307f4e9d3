// Every Dockerfile of the repository: multi-stage, built with `pnpm deploy`, a pinned base image, and a
// final stage that runs as a non-root user. (Static checks: building needs a Docker daemon and a registry.)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../../..");
const SERVICES = ["weft", "runner", "agent", "mcp"];

/** Every Dockerfile under the repository (`Dockerfile`, `*.Dockerfile`), skipping dependencies and builds. */
function dockerfiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (["node_modules", ".git", "dist", ".turbo", ".loominal"].includes(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...dockerfiles(path));
    else if (name === "Dockerfile" || name.endsWith(".Dockerfile")) out.push(path);
  }
  return out;
}

interface Stage {
  image: string;
  name: string | undefined;
  user: string | undefined;
}

/** The stages of a Dockerfile: base image, stage name, last USER (continuation lines joined). */
function stages(text: string): Stage[] {
  const lines = text
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const out: Stage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from?.[1]) {
      out.push({ image: from[1], name: from[2], user: undefined });
      continue;
    }
    const user = /^USER\s+(\S+)/i.exec(line);
    const stage = out.at(-1);
    if (user?.[1] && stage) stage.user = user[1];
  }
  return out;
}

/** What is wrong with a Dockerfile (empty: nothing). */
function problems(text: string): string[] {
  const found: string[] = [];
  const all = stages(text);
  if (all.length < 2) found.push("not multi-stage (build in one stage, copy the result into a clean one)");
  const names = new Set(all.map((s) => s.name).filter(Boolean));
  for (const s of all) {
    if (names.has(s.image)) continue;
    const digest = /@sha256:[0-9a-f]{64}$/.test(s.image);
    const exact = /:\d+\.\d+\.\d+(-[\w.-]+)?$/.test(s.image);
    if (!digest && !exact)
      found.push(`base image ${s.image} is not pinned (use an exact version tag or @sha256:…)`);
  }
  const last = all.at(-1);
  const user = last?.user;
  if (!user) found.push("the final stage has no USER: it would run as root");
  else if (/^(root|0)(:|$)/.test(user)) found.push(`the final stage runs as ${user}`);
  if (!/pnpm\b.*\bdeploy\b/.test(text)) found.push("does not build with `pnpm deploy`");
  return found;
}

describe("Dockerfiles", () => {
  const files = dockerfiles();

  it("exist for every service", () => {
    const rel = files.map((f) => relative(ROOT, f));
    for (const s of SERVICES) expect(rel).toContain(`deploy/docker/${s}.Dockerfile`);
  });

  for (const file of dockerfiles())
    it(`${relative(ROOT, file)}: multi-stage, pnpm deploy, pinned base, non-root USER`, () => {
      expect(problems(readFileSync(file, "utf8"))).toEqual([]);
    });

  it("runs as the uid the Kubernetes manifests require", () => {
    for (const s of SERVICES) {
      const last = stages(readFileSync(join(ROOT, "deploy/docker", `${s}.Dockerfile`), "utf8")).at(-1);
      expect(last?.user, s).toBe("1000:1000");
    }
  });

  it("finds what is wrong with a bad one", () => {
    expect(problems("FROM node:latest\nRUN npm ci\nCMD node x.js\n")).toEqual([
      "not multi-stage (build in one stage, copy the result into a clean one)",
      "base image node:latest is not pinned (use an exact version tag or @sha256:…)",
      "the final stage has no USER: it would run as root",
      "does not build with `pnpm deploy`",
    ]);
    // USER in the build stage only does not count; root does not count.
    const twoStage = (user: string) =>
      `FROM node:20.20.2 AS build\nUSER 1000\nRUN pnpm deploy --prod /out\nFROM node:20\n${user}\n`;
    expect(problems(twoStage(""))).toEqual([
      "base image node:20 is not pinned (use an exact version tag or @sha256:…)",
      "the final stage has no USER: it would run as root",
    ]);
    expect(problems(twoStage("USER root"))).toContain("the final stage runs as root");
    expect(
      problems(`FROM node@sha256:${"a".repeat(64)} AS b\nRUN pnpm deploy /o\nFROM b\nUSER 1000\n`),
    ).toEqual([]);
  });
});
