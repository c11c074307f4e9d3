import { type Fabric, streamInfo } from "@loominal/fabric";
import type { BucketRole, MemoryIdentity } from "./categories.js";
import type { MemoryView } from "./view.js";

export interface BucketHealth {
  role: BucketRole;
  name: string;
  exists: boolean;
  values?: number;
  bytes?: number;
  ttlMs?: number;
}

export interface StoreHealth {
  status: "ok" | "unavailable" | "degraded";
  nats: { url: string; state: string; serverVersion?: string; error?: string };
  identity: MemoryIdentity;
  settings: {
    ephemeralTtlMs: number;
    maxCoreMemories: number;
    maxPublicMemories: number;
    maxTeamMemories: number;
  };
  buckets: BucketHealth[];
  views: ViewHealth[];
}

/** One in-process view: how many memories it holds, and what it skipped or dropped. */
export interface ViewHealth {
  bucket: string;
  prefix: string;
  memories: number;
  /** Records skipped because they failed validation or were stored at the wrong key. */
  invalidSkipped: number;
  /** The most it holds (public and team views). */
  limit?: number;
  /** Memories dropped to stay within `limit`. */
  dropped?: number;
}

/** What a store knows of itself without NATS: who it is, its limits, and its in-process views. */
export interface StoreSelf {
  identity: MemoryIdentity;
  settings: StoreHealth["settings"];
  views: readonly MemoryView[];
}

/**
 * Connection, identity, settings, bucket sizes and views of a store. Never includes credentials; never
 * throws for a NATS outage (the status says it).
 */
export async function storeHealth(
  fabric: Fabric,
  self: StoreSelf,
  bucketName: (role: BucketRole) => string,
): Promise<StoreHealth> {
  const base = {
    identity: self.identity,
    settings: self.settings,
    views: self.views.map(
      (v): ViewHealth => ({
        bucket: v.bucket,
        prefix: v.prefix,
        memories: v.size,
        invalidSkipped: v.invalidRecords,
        ...(v.maxEntries === undefined ? {} : { limit: v.maxEntries, dropped: v.dropped }),
      }),
    ),
  };
  const roles: BucketRole[] = ["project", "ephemeral", "personal", "public"];
  if (!fabric.isConnected) {
    return {
      status: "unavailable",
      nats: { url: fabric.url, state: fabric.state, error: fabric.unavailable().message },
      buckets: roles.map((role) => ({ role, name: bucketName(role), exists: false })),
      ...base,
    };
  }
  try {
    const jsm = await fabric.jsm();
    const infos = await Promise.all(roles.map((role) => streamInfo(jsm, `KV_${bucketName(role)}`)));
    const bucketHealth = roles.map((role, i): BucketHealth => {
      const info = infos[i];
      const name = bucketName(role);
      if (!info) return { role, name, exists: false };
      return {
        role,
        name,
        exists: true,
        values: info.state.messages,
        bytes: info.state.bytes,
        ttlMs: Math.round(info.config.max_age / 1_000_000),
      };
    });
    const degraded = base.views.some((v) => v.invalidSkipped > 0);
    return {
      status: degraded ? "degraded" : "ok",
      nats: {
        url: fabric.url,
        state: fabric.state,
        serverVersion: fabric.features.version.text,
      },
      buckets: bucketHealth,
      ...base,
    };
  } catch (err) {
    const mapped = fabric.mapError(err);
    return {
      status: "unavailable",
      nats: {
        url: fabric.url,
        state: fabric.state,
        error: mapped instanceof Error ? mapped.message : String(mapped),
      },
      buckets: roles.map((role) => ({ role, name: bucketName(role), exists: false })),
      ...base,
    };
  }
}
