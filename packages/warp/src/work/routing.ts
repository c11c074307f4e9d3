import { ensureBucket, type Fabric, jsonCodec } from "@loominal/fabric";
import {
  agentTypeAllowed,
  assertNameToken,
  type BoundaryPolicy,
  boundaryPolicySchema,
  buckets,
  LoominalError,
} from "@loominal/protocol";

const codec = jsonCodec(boundaryPolicySchema);
/** How long a policy read is reused: a changed policy applies to claims within this time. */
const POLICY_CACHE_MS = 1_000;

/** The bucket of boundary policies (one key per boundary, written by Weft from its config). */
export const BOUNDARY_POLICY_BUCKET = { name: buckets.boundaries(), history: 1 } as const;

/**
 * The routing policies of boundaries, as claimers read them: KV `loom-boundaries`, key `<boundary>`.
 * A boundary without a policy accepts every agent type.
 */
export class BoundaryPolicies {
  #fabric: Fabric;
  #cache = new Map<string, { at: number; policy: BoundaryPolicy | undefined }>();

  constructor(fabric: Fabric) {
    this.#fabric = fabric;
  }

  async get(boundary: string): Promise<BoundaryPolicy | undefined> {
    const b = assertNameToken(boundary, "boundary");
    const cached = this.#cache.get(b);
    if (cached && Date.now() - cached.at < POLICY_CACHE_MS) return cached.policy;
    const kv = await ensureBucket(this.#fabric, BOUNDARY_POLICY_BUCKET);
    const e = await kv.get(b);
    let policy: BoundaryPolicy | undefined;
    if (e?.operation === "PUT") {
      const r = codec.safeDecode(e.value, `${BOUNDARY_POLICY_BUCKET.name}/${b}`);
      policy = r.ok ? r.value : undefined;
    }
    this.#cache.set(b, { at: Date.now(), policy });
    return policy;
  }

  /** Writes (or replaces) the policy of a boundary. */
  async put(policy: BoundaryPolicy): Promise<void> {
    const p = boundaryPolicySchema.parse(policy);
    const kv = await ensureBucket(this.#fabric, BOUNDARY_POLICY_BUCKET);
    await kv.put(p.boundary, codec.encode(p));
    this.#cache.delete(p.boundary);
  }

  /**
   * Throws `forbidden` when an agent of `agentType` (undefined: not registered) may not claim work of
   * `boundary`. Checked before a claim pulls anything, so an offer is never delivered to a claimer that
   * may not take it and never bounces between such claimers.
   */
  async assertMayClaim(boundary: string, agentType: string | undefined): Promise<void> {
    const policy = await this.get(boundary);
    if (agentTypeAllowed(policy, agentType)) return;
    const allowed = policy?.allowedAgentTypes.join(", ") ?? "";
    throw new LoominalError(
      "forbidden",
      agentType === undefined
        ? `boundary ${boundary} accepts work only from agent types ${allowed}; register with one of them (warp_registry_register agentType) before claiming`
        : `boundary ${boundary} accepts work only from agent types ${allowed}, and this agent is ${agentType}; claim work of another boundary`,
      {
        details: {
          boundary,
          agentType: agentType ?? null,
          allowedAgentTypes: policy?.allowedAgentTypes ?? [],
        },
      },
    );
  }
}
