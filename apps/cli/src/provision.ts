import { Fabric, type LoominalConfig, type ProvisionResult, provision } from "@loominal/fabric";
import { patternProvisionSpecs } from "@loominal/pattern";
import { shuttleBucketSpec } from "@loominal/shuttle";
import { warpProvisionSpecs } from "@loominal/warp";

/**
 * Creates (or verifies, applying changed limits) every stream and bucket that Warp, Pattern and Shuttle
 * use for the project, with the configuration they ensure. Needs credentials that may create streams: the
 * admin user of `loominal nats-config --admin`, or an open server (the local one `up` starts).
 */
export async function provisionProject(fabric: Fabric, config: LoominalConfig): Promise<ProvisionResult[]> {
  const p = config.projectId;
  const warp = warpProvisionSpecs(p, config.file.warp);
  return provision(fabric, {
    streams: warp.streams,
    buckets: [...warp.buckets, ...patternProvisionSpecs(p, config.file.pattern), shuttleBucketSpec(p)],
  });
}

/** Connects with the configured credentials, provisions the project, and closes the connection. */
export async function provisionWithConfig(config: LoominalConfig, url?: string): Promise<ProvisionResult[]> {
  const fabric = await Fabric.connect({
    nats: url ? { ...config.nats, servers: [url] } : config.nats,
    name: "loominal nats-provision",
  });
  try {
    return await provisionProject(fabric, config);
  } finally {
    await fabric.close();
  }
}

/** One line per created or updated stream and bucket, and a count of the verified ones. */
export function describeProvision(projectId: string, results: ProvisionResult[]): string[] {
  const changed = results.filter((r) => r.outcome !== "verified");
  const verified = results.length - changed.length;
  return [
    ...changed.map((r) => `  ${r.outcome} ${r.kind} ${r.name}`),
    `Provisioned project ${projectId}: ${changed.length} created or updated, ${verified} already in place.`,
  ];
}
