import type { BatchV1Api, CoreV1Api, V1Job } from "@kubernetes/client-node";
import type { Logger } from "@loominal/fabric";
import { LoominalError, type TargetRecord } from "@loominal/protocol";
import { z } from "zod";
import { envNameSchema, errorText, parseConfig, withTimeout } from "./common.js";
import type { HealthResult, Mechanism, MechanismHandle, RemoteStatus, StartRequest } from "./types.js";

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a Kubernetes name: lower-case letters, digits and -")
  .max(63);
const quantity = z.string().regex(/^[0-9.]+[A-Za-z]*$/, "a Kubernetes quantity such as 500m, 1, 512Mi");
const resourceList = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional() });

/**
 * `kubernetes` target config: a Job per spin-up. Credentials come from the kubeconfig file at
 * `kubeconfigPath` or, without one, from the pod's in-cluster service account; secrets the agent needs are
 * Kubernetes Secret references (`secretEnv`), never values.
 */
export const kubernetesConfigSchema = z.strictObject({
  namespace: dnsLabel,
  /** A kubeconfig file on Weft's host; without it Weft uses its in-cluster service account. */
  kubeconfigPath: z.string().min(1).optional(),
  /** A context of that kubeconfig (default: its current context). */
  context: z.string().min(1).optional(),
  image: z.string().min(1),
  imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.record(envNameSchema, z.string()).default({}),
  /** Env variables of the agent read from Kubernetes Secrets: `NAME: { secretName, key }`. */
  secretEnv: z
    .record(envNameSchema, z.strictObject({ secretName: dnsLabel, key: z.string().min(1) }))
    .default({}),
  resources: z
    .strictObject({ requests: resourceList.optional(), limits: resourceList.optional() })
    .optional(),
  serviceAccountName: dnsLabel.optional(),
  imagePullSecrets: z.array(dnsLabel).default([]),
  ttlSecondsAfterFinished: z.int().min(0).default(3_600),
  /** Hard limit on the Job's run time, in seconds (none by default: Weft's idle shutdown ends agents). */
  activeDeadlineSeconds: z.int().min(1).optional(),
  labels: z.record(z.string(), z.string().max(63)).default({}),
  /** Each API call, in ms. */
  timeoutMs: z.int().min(100).max(300_000).default(15_000),
});
export type KubernetesConfig = z.infer<typeof kubernetesConfigSchema>;

const handleSchema = z.object({ namespace: z.string(), jobName: z.string(), config: kubernetesConfigSchema });

export const LABEL_SPINUP = "loominal.dev/spinup-id";
export const LABEL_TARGET = "loominal.dev/target-id";

/** The Job name of a spin-up: `loominal-agent-<spinUpId>` (spin-up ids are lower-case hex). */
export function jobName(spinUpId: string): string {
  return `loominal-agent-${spinUpId.toLowerCase().replace(/[^a-z0-9-]/g, "-")}`
    .slice(0, 63)
    .replace(/-+$/, "");
}

/** The Job a spin-up creates (exported so its shape is documented and tested). */
export function jobManifest(config: KubernetesConfig, request: StartRequest): V1Job {
  const name = jobName(request.spinUpId);
  const labels = {
    ...config.labels,
    "app.kubernetes.io/name": "loominal-agent",
    "app.kubernetes.io/managed-by": "loominal-weft",
    [LABEL_TARGET]: request.target.targetId,
    "loominal.dev/target-name": request.target.name,
    "loominal.dev/project": request.target.projectId,
    [LABEL_SPINUP]: request.spinUpId,
  };
  const env = [
    ...Object.entries({ ...config.env, ...request.env }).map(([n, value]) => ({ name: n, value })),
    ...Object.entries(config.secretEnv).map(([n, ref]) => ({
      name: n,
      valueFrom: { secretKeyRef: { name: ref.secretName, key: ref.key } },
    })),
  ];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: config.namespace, labels },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
      ...(config.activeDeadlineSeconds ? { activeDeadlineSeconds: config.activeDeadlineSeconds } : {}),
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          ...(config.serviceAccountName ? { serviceAccountName: config.serviceAccountName } : {}),
          ...(config.imagePullSecrets.length
            ? { imagePullSecrets: config.imagePullSecrets.map((n) => ({ name: n })) }
            : {}),
          containers: [
            {
              name: "agent",
              image: config.image,
              ...(config.imagePullPolicy ? { imagePullPolicy: config.imagePullPolicy } : {}),
              ...(config.command ? { command: config.command } : {}),
              ...(config.args ? { args: config.args } : {}),
              env,
              ...(config.resources ? { resources: config.resources } : {}),
            },
          ],
        },
      },
    },
  };
}

type KubernetesClient = typeof import("@kubernetes/client-node");
let client: Promise<KubernetesClient> | undefined;
/** The client module once loaded (for telling its API errors apart). */
let loaded: KubernetesClient | undefined;

/**
 * The Kubernetes client, loaded the first time a Kubernetes target is used: it is most of Weft's start-up
 * (about 1.1 s and 28 MB of heap), and a Weft without Kubernetes targets never needs it.
 */
function kubernetesClient(): Promise<KubernetesClient> {
  client ??= import("@kubernetes/client-node").then((m) => {
    loaded = m;
    return m;
  });
  return client;
}

/** A Kubernetes API failure as an error that says what to fix. */
function apiError(err: unknown, what: string, config: KubernetesConfig): LoominalError {
  if (err instanceof LoominalError) return err;
  if (loaded && err instanceof loaded.ApiException) {
    let detail = "";
    try {
      const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as { message?: unknown };
      if (typeof body?.message === "string") detail = body.message;
    } catch {
      // not a Status object
    }
    const code = err.code as number;
    const hint =
      code === 401
        ? "the credentials were rejected: check the kubeconfig (config.kubeconfigPath) or the service account token"
        : code === 403
          ? `Weft's identity may not do this in namespace ${config.namespace}: grant it the Role of deploy/k8s (jobs: create, get, list, delete; pods: list)`
          : code === 409
            ? "a Job of that name already exists"
            : code === 404
              ? `namespace ${config.namespace} or the object does not exist`
              : "the Kubernetes API failed";
    return new LoominalError(
      code === 401 || code === 403
        ? "forbidden"
        : code === 409
          ? "conflict"
          : code === 404
            ? "not_found"
            : "internal",
      `${what}: HTTP ${code}${detail ? ` (${detail.slice(0, 300)})` : ""}; ${hint}`,
    );
  }
  return new LoominalError("internal", `${what}: ${errorText(err)}`);
}

/** Starts agents as Kubernetes Jobs. */
export class KubernetesMechanism implements Mechanism {
  readonly name = "kubernetes" as const;
  #logger: Logger;

  constructor(options: { logger: Logger }) {
    this.#logger = options.logger;
  }

  validateConfig(config: unknown): Record<string, unknown> {
    return parseConfig("kubernetes", kubernetesConfigSchema, config);
  }

  async #clients(config: KubernetesConfig): Promise<{ batch: BatchV1Api; core: CoreV1Api }> {
    const { BatchV1Api, CoreV1Api, KubeConfig } = await kubernetesClient();
    const kc = new KubeConfig();
    try {
      if (config.kubeconfigPath) kc.loadFromFile(config.kubeconfigPath);
      else kc.loadFromCluster();
      if (config.context) kc.setCurrentContext(config.context);
    } catch (err) {
      throw new LoominalError(
        "invalid_input",
        `the kubeconfig ${config.kubeconfigPath ?? "(in-cluster)"} cannot be used: ${errorText(err)}; fix config.kubeconfigPath or config.context`,
      );
    }
    if (!kc.getCurrentCluster())
      throw new LoominalError(
        "invalid_input",
        config.kubeconfigPath
          ? `the kubeconfig ${config.kubeconfigPath} has no current cluster; set config.context`
          : "no kubeconfigPath and not running in a cluster (no service account): set config.kubeconfigPath",
      );
    return { batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api) };
  }

  async #call<T>(config: KubernetesConfig, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(fn(), config.timeoutMs, what);
    } catch (err) {
      throw apiError(err, what, config);
    }
  }

  async start(request: StartRequest): Promise<MechanismHandle> {
    const config = kubernetesConfigSchema.parse(request.target.config);
    const { batch } = await this.#clients(config);
    const body = jobManifest(config, request);
    const name = body.metadata?.name ?? jobName(request.spinUpId);
    await this.#call(config, `creating Job ${config.namespace}/${name}`, () =>
      batch.createNamespacedJob({ namespace: config.namespace, body }),
    );
    this.#logger.info(
      { spinUpId: request.spinUpId, namespace: config.namespace, job: name },
      "created a Job",
    );
    return { namespace: config.namespace, jobName: name, config };
  }

  async stop(handle: MechanismHandle, _options: { graceMs: number }): Promise<void> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return;
    const { namespace, jobName: name, config } = h.data;
    const { batch } = await this.#clients(config);
    try {
      await this.#call(config, `deleting Job ${namespace}/${name}`, () =>
        batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Background" }),
      );
    } catch (err) {
      if (err instanceof LoominalError && err.code === "not_found") return;
      throw err;
    }
  }

  async status(handle: MechanismHandle): Promise<RemoteStatus> {
    const h = handleSchema.safeParse(handle);
    if (!h.success) return { state: "unknown", message: "not a kubernetes spin-up handle" };
    const { namespace, jobName: name, config } = h.data;
    const { batch, core } = await this.#clients(config);
    let job: V1Job;
    try {
      job = await this.#call(config, `reading Job ${namespace}/${name}`, () =>
        batch.readNamespacedJob({ name, namespace }),
      );
    } catch (err) {
      if (err instanceof LoominalError && err.code === "not_found")
        return { state: "gone", message: `Job ${namespace}/${name} no longer exists` };
      throw err;
    }
    const s = job.status ?? {};
    if ((s.succeeded ?? 0) > 0) return { state: "succeeded", message: `Job ${name} succeeded` };
    if ((s.failed ?? 0) > 0) {
      const reason = s.conditions?.find((c) => c.type === "Failed")?.message;
      return { state: "failed", message: `Job ${name} failed${reason ? `: ${reason}` : ""}` };
    }
    const pods = await this.#call(config, `listing the pods of Job ${namespace}/${name}`, () =>
      core.listNamespacedPod({
        namespace,
        labelSelector: `${LABEL_SPINUP}=${job.metadata?.labels?.[LABEL_SPINUP] ?? ""}`,
      }),
    );
    const pod = pods.items[0];
    if (!pod) return { state: "pending", message: `Job ${name} has no pod yet` };
    const waiting = pod.status?.containerStatuses?.find((c) => c.state?.waiting)?.state?.waiting;
    const phase = pod.status?.phase ?? "Unknown";
    if (phase === "Running") return { state: "running", message: `pod ${pod.metadata?.name} is running` };
    if (phase === "Failed") return { state: "failed", message: `pod ${pod.metadata?.name} failed` };
    return {
      state: "pending",
      message: `pod ${pod.metadata?.name} is ${phase}${waiting?.reason ? ` (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""})` : ""}`,
    };
  }

  async test(target: TargetRecord): Promise<HealthResult> {
    try {
      const config = parseConfig("kubernetes", kubernetesConfigSchema, target.config);
      const { batch } = await this.#clients(config);
      const list = await this.#call(config, `listing Jobs in ${config.namespace}`, () =>
        batch.listNamespacedJob({
          namespace: config.namespace,
          labelSelector: "app.kubernetes.io/managed-by=loominal-weft",
          limit: 50,
        }),
      );
      return {
        ok: true,
        message: `Jobs of namespace ${config.namespace} readable (${list.items.length} from Weft)`,
      };
    } catch (err) {
      return { ok: false, message: errorText(err) };
    }
  }
}
