// deploy/compose: the one-host trial (3-node NATS JetStream cluster, Weft, two Runners). Docker Compose is
// not needed: the file is parsed and checked, and its nats.conf is checked by nats-server itself.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { natsServerBinary } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const ROOT = join(import.meta.dirname, "../../..");
const DIR = join(ROOT, "deploy/compose");

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  read_only?: boolean;
  user?: string;
}

const compose = parse(readFileSync(join(DIR, "compose.yaml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = Object.entries(compose.services);
const nats = services.filter(([, s]) => s.image?.startsWith("nats:"));
const weft = services.filter(([, s]) => s.image?.includes("/weft:"));
const runners = services.filter(([, s]) => s.image?.includes("/runner:"));

describe("deploy/compose", () => {
  it("runs a 3-node NATS JetStream cluster, each node with its own name, store and health check", () => {
    expect(nats.map(([n]) => n).sort()).toEqual(["nats-1", "nats-2", "nats-3"]);
    const conf = readFileSync(join(DIR, "nats.conf"), "utf8");
    expect(conf).toMatch(/jetstream\s*\{[^}]*store_dir: \/data/);
    for (const [name, s] of nats) {
      expect(s.image).toMatch(/:\d+\.\d+\.\d+(-[\w.-]+)?$/);
      expect(s.command).toEqual(["-c", "/etc/nats/nats.conf", "--name", name]);
      expect(conf).toContain(`nats://${name}:6222`);
      expect(s.volumes).toContain(`${name}:/data`);
      expect(compose.volumes).toHaveProperty(name);
      expect(s.healthcheck?.test.join(" ")).toContain("/healthz?js-enabled-only=true");
    }
  });

  it("has a nats.conf nats-server 2.9 accepts", () => {
    const r = spawnSync(natsServerBinary(), ["-t", "-c", join(DIR, "nats.conf")], { encoding: "utf8" });
    const out = r.stdout + r.stderr;
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/is valid/);
  });

  it("runs Weft and two Runners against every node, once the cluster is healthy, probed on /health", () => {
    expect(weft).toHaveLength(1);
    expect(runners.length).toBeGreaterThanOrEqual(2);
    const replicaIds = new Set(runners.map(([, s]) => s.environment?.RUNNER_REPLICA_ID));
    expect(replicaIds.size).toBe(runners.length);
    for (const [name, s] of [...weft, ...runners]) {
      const urls = (s.environment?.NATS_URL ?? "").split(",");
      expect(urls.sort(), name).toEqual(nats.map(([n]) => `nats://${n}:4222`).sort());
      for (const [n] of nats)
        expect(s.depends_on?.[n], `${name} waits for ${n}`).toEqual({ condition: "service_healthy" });
      expect(s.healthcheck?.test.join(" "), name).toMatch(/http:\/\/127\.0\.0\.1:\d+\/health'/);
      expect(s.user, name).toBe("1000:1000");
      expect(s.read_only, name).toBe(true);
    }
    // Secrets come from the environment of whoever runs compose, required, never written in the file.
    expect(weft[0]?.[1].environment?.WEFT_API_TOKENS).toMatch(/^\$\{WEFT_API_TOKENS:\?/);
    for (const [, s] of runners)
      expect(s.environment?.RUNNER_AUTH_TOKEN).toMatch(/^\$\{RUNNER_AUTH_TOKEN:\?/);
  });

  it("builds the service images from this repository's Dockerfiles", () => {
    for (const [name, s] of [...weft, ...runners]) {
      const image = /\/([a-z-]+):/.exec(s.image ?? "")?.[1];
      expect(existsSync(join(ROOT, "deploy/docker", `${image}.Dockerfile`)), name).toBe(true);
      if (s.build) {
        expect(join(DIR, s.build.context)).toBe(ROOT);
        expect(s.build.dockerfile).toBe(`deploy/docker/${image}.Dockerfile`);
      }
    }
    expect(services.some(([, s]) => s.build?.dockerfile === "deploy/docker/weft.Dockerfile")).toBe(true);
    expect(services.some(([, s]) => s.build?.dockerfile === "deploy/docker/runner.Dockerfile")).toBe(true);
  });

  it("publishes ports on 127.0.0.1 only, and every service has a health check", () => {
    for (const [name, s] of services) {
      for (const p of s.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:/);
      expect(s.healthcheck?.test.length, name).toBeGreaterThan(0);
    }
  });
});
