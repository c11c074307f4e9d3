import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const ROOT = join(import.meta.dirname, "../../../..");
const K8S = join(ROOT, "deploy/k8s");

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
  rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  roleRef?: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string }>;
}

interface Container {
  name: string;
  image: string;
  envFrom?: Array<{ secretRef?: { name: string; optional?: boolean } }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  resources?: { requests?: unknown; limits?: unknown };
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
}

function hasKubectl(): boolean {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Renders an overlay with `kubectl kustomize` when kubectl is installed, else with `miniKustomize`. */
function render(overlay: string): K8sObject[] {
  const dir = join(K8S, "overlays", overlay);
  if (!hasKubectl()) return miniKustomize(dir);
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

interface Kustomization {
  namespace?: string;
  labels?: Array<{ pairs: Record<string, string> }>;
  resources?: string[];
  replicas?: Array<{ name: string; count: number }>;
  configMapGenerator?: Array<{ name: string; files: string[] }>;
}

/**
 * The part of kustomize the manifests use (resources, namespace, labels, replicas, a configMapGenerator
 * of files without a name hash), for machines without kubectl. Where kubectl is installed the test uses
 * it instead, and both must satisfy the same assertions.
 */
function miniKustomize(dir: string): K8sObject[] {
  const k = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as Kustomization;
  const objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    if (statSync(path).isDirectory()) objects.push(...miniKustomize(path));
    else objects.push(...parseAllDocuments(readFileSync(path, "utf8")).map((d) => d.toJS() as K8sObject));
  }
  for (const g of k.configMapGenerator ?? [])
    objects.push({
      kind: "ConfigMap",
      metadata: { name: g.name },
      spec: {},
      data: Object.fromEntries(g.files.map((f) => [basename(f), readFileSync(join(dir, f), "utf8")])),
    } as K8sObject);
  for (const o of objects) {
    if (k.namespace && o.kind !== "Namespace") o.metadata.namespace = k.namespace;
    for (const l of k.labels ?? []) {
      const meta = o.metadata as { labels?: Record<string, string> };
      meta.labels = { ...meta.labels, ...l.pairs };
    }
    const replicas = k.replicas?.find((r) => r.name === o.metadata.name);
    if (replicas && (o.kind === "Deployment" || o.kind === "StatefulSet")) o.spec.replicas = replicas.count;
  }
  return objects;
}

/** The RBAC verbs the kubernetes mechanism needs, read from the calls in its source. */
function verbsUsed(): { jobs: string[]; pods: string[] } {
  const src = readFileSync(join(import.meta.dirname, "kubernetes.ts"), "utf8");
  const verb = {
    create: "create",
    read: "get",
    list: "list",
    delete: "delete",
    patch: "patch",
    replace: "update",
  };
  const of = (re: RegExp) =>
    [...new Set([...src.matchAll(re)].map((m) => verb[m[1] as keyof typeof verb]))].sort();
  return { jobs: of(/batch\.(\w+)NamespacedJob\(/g), pods: of(/core\.(\w+)NamespacedPod\(/g) };
}

describe("deploy/k8s renders a fabric kubectl can apply", () => {
  for (const overlay of ["single-node", "ha"]) {
    it(`${overlay}: NATS JetStream StatefulSet, Weft with its Role, probes, non-root containers`, () => {
      const objects = render(overlay);
      const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
      const one = (kind: string, name: string) => {
        const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
        if (!o) throw new Error(`${overlay} renders no ${kind} ${name}`);
        return o;
      };
      for (const o of objects)
        if (o.kind !== "Namespace") expect(o.metadata.namespace, o.metadata.name).toBe("loominal");

      const nats = one("StatefulSet", "nats");
      expect(nats.spec.replicas).toBe(overlay === "ha" ? 3 : 1);
      expect(nats.spec.serviceName).toBe("nats-headless");
      expect(one("Service", "nats-headless").spec.clusterIP).toBe("None");
      expect((nats.spec.volumeClaimTemplates as unknown[]).length).toBe(1);
      const natsConf = (one("ConfigMap", "nats-config") as unknown as { data: Record<string, string> }).data[
        "nats.conf"
      ];
      expect(natsConf).toMatch(/jetstream\s*\{/);
      if (overlay === "ha")
        for (const i of [0, 1, 2]) expect(natsConf).toContain(`nats://nats-${i}.nats-headless:6222`);
      else expect(natsConf).not.toContain("cluster");

      const weft = one("Deployment", "weft");
      expect(weft.spec.replicas).toBe(overlay === "ha" ? 2 : 1);
      const podSpec = (weft.spec.template as { spec: { serviceAccountName: string } }).spec;
      expect(podSpec.serviceAccountName).toBe("weft");
      one("ServiceAccount", "weft");

      // The Role grants exactly the verbs the kubernetes mechanism calls, and nothing with `*`.
      const role = one("Role", "weft-spinup");
      const used = verbsUsed();
      expect(used.jobs.length).toBeGreaterThan(0);
      const rule = (group: string, resource: string) =>
        role.rules
          ?.find((r) => r.apiGroups.includes(group) && r.resources.includes(resource))
          ?.verbs.slice()
          .sort();
      expect(rule("batch", "jobs")).toEqual(used.jobs);
      expect(rule("", "pods")).toEqual(used.pods);
      expect(JSON.stringify(role.rules)).not.toContain("*");
      const binding = one("RoleBinding", "weft-spinup");
      expect(binding.roleRef).toMatchObject({ kind: "Role", name: "weft-spinup" });
      expect(binding.subjects).toContainEqual(
        expect.objectContaining({ kind: "ServiceAccount", name: "weft" }),
      );

      for (const w of [...byKind("Deployment"), ...byKind("StatefulSet")]) {
        const spec = (
          w.spec.template as {
            spec: {
              securityContext?: { runAsNonRoot?: boolean };
              containers: Container[];
              volumes?: Array<{ configMap?: { name: string } }>;
            };
          }
        ).spec;
        expect(spec.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
        for (const c of spec.containers) {
          expect(c.image, c.name).toMatch(/:[0-9][\w.-]*$/);
          expect(c.securityContext, c.name).toMatchObject({
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
          });
          expect(c.livenessProbe, c.name).toBeDefined();
          expect(c.readinessProbe, c.name).toBeDefined();
          expect(c.resources?.requests, c.name).toBeDefined();
          expect(c.resources?.limits, c.name).toBeDefined();
        }
        for (const v of spec.volumes ?? []) if (v.configMap) one("ConfigMap", v.configMap.name);
        const selector = (w.spec.selector as { matchLabels: Record<string, string> }).matchLabels;
        expect(
          byKind("PodDisruptionBudget").some(
            (p) =>
              JSON.stringify((p.spec.selector as { matchLabels: unknown }).matchLabels) ===
              JSON.stringify(selector),
          ),
          `${w.metadata.name} has a PodDisruptionBudget`,
        ).toBe(true);
      }
      // NATS users come from the Secret `loominal nats-config --k8s` writes, included by nats.conf.
      expect(natsConf).toMatch(/^include \.\.\/nats-auth\/accounts\.conf$/m);
      const natsPod = (
        nats.spec.template as {
          spec: {
            containers: Container[];
            volumes: Array<{ name: string; secret?: { secretName: string } }>;
          };
        }
      ).spec;
      const authVolume = natsPod.volumes.find((v) => v.secret?.secretName === "nats-accounts");
      expect(authVolume).toBeDefined();
      const mounts = natsPod.containers[0]?.volumeMounts ?? [];
      expect(mounts.find((m) => m.name === authVolume?.name)?.mountPath).toBe("/etc/nats-auth");
      expect(mounts.find((m) => m.mountPath === "/etc/nats")).toBeDefined();

      // The Runner, whenever the repository has one: its Deployment, Service, probes on /health.
      if (existsSync(join(ROOT, "apps/runner"))) {
        const runner = one("Deployment", "runner");
        expect(runner.spec.replicas).toBe(overlay === "ha" ? 2 : 1);
        const c = (runner.spec.template as { spec: { containers: Container[] } }).spec.containers[0];
        expect(c?.env?.find((e) => e.name === "RUNNER_AUTH_TOKEN")?.valueFrom?.secretKeyRef).toEqual({
          name: "runner-auth",
          key: "token",
        });
        expect(c?.env?.find((e) => e.name === "RUNNER_HOST")?.value).toBe("0.0.0.0");
        const port = (one("Service", "runner").spec.ports as Array<{ targetPort: string }>)[0];
        expect(port?.targetPort).toBe("http");
      }

      // Weft and the Runner: probes on /health, the services' NATS user by reference, their images built
      // by a Dockerfile of this repository.
      for (const d of byKind("Deployment")) {
        const c = (d.spec.template as { spec: { containers: Container[] } }).spec.containers[0];
        expect(c?.livenessProbe?.httpGet?.path, d.metadata.name).toBe("/health");
        expect(c?.readinessProbe?.httpGet?.path, d.metadata.name).toBe("/health");
        expect(c?.envFrom, d.metadata.name).toContainEqual({ secretRef: { name: "nats-service-user" } });
        const image = /^ghcr\.io\/loominal\/([a-z-]+):/.exec(c?.image ?? "")?.[1];
        expect(existsSync(join(ROOT, "deploy/docker", `${image}.Dockerfile`)), c?.image).toBe(true);
      }

      // Tokens are referenced, never written into the manifests.
      expect(byKind("Secret")).toEqual([]);
      const weftContainer = (weft.spec.template as { spec: { containers: Container[] } }).spec.containers[0];
      expect(weftContainer?.env?.find((e) => e.valueFrom?.secretKeyRef)?.valueFrom?.secretKeyRef?.name).toBe(
        "weft-tokens",
      );
    });
  }
});
