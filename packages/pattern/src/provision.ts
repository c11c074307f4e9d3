import type { BucketSpec } from "@loominal/fabric";
import { buckets, type PatternConfig } from "@loominal/protocol";
import type { BucketRole } from "./categories.js";

/** A memory bucket: one value per key; the ephemeral one expires its keys after `ephemeralTtlMs`. */
export function memoryBucketSpec(name: string, role: BucketRole, ephemeralTtlMs: number): BucketSpec {
  const spec: BucketSpec = { name, history: 1 };
  if (role === "ephemeral") spec.ttlMs = ephemeralTtlMs;
  return spec;
}

/**
 * Every memory bucket of a project (its own two, and the shared personal and public ones) with the
 * configuration Pattern ensures: what `loominal nats-provision` creates with admin credentials.
 */
export function patternProvisionSpecs(projectId: string, pattern: PatternConfig): BucketSpec[] {
  return [
    memoryBucketSpec(buckets.memory(projectId), "project", pattern.ephemeralTtlMs),
    memoryBucketSpec(buckets.memoryEphemeral(projectId), "ephemeral", pattern.ephemeralTtlMs),
    memoryBucketSpec(buckets.memoryPersonal(), "personal", pattern.ephemeralTtlMs),
    memoryBucketSpec(buckets.memoryPublic(), "public", pattern.ephemeralTtlMs),
  ];
}
