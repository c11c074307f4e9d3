import { UnsupportedServerError } from "./errors.js";

/** A parsed `major.minor.patch` server version. */
export interface ServerVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

export function parseServerVersion(text: string): ServerVersion {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return { major: 0, minor: 0, patch: 0, text };
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text };
}

export function versionAtLeast(v: ServerVersion, major: number, minor: number, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

/**
 * What the connected server can do. On 2.9 several of these calls succeed silently and do nothing
 * (per-key TTL) or throw (multi-filter), so every use is gated on these flags.
 */
export interface ServerFeatures {
  version: ServerVersion;
  /** Consumer `filter_subjects`, `kv.keys([...])`, `kv.watch({ key: [...] })`. 2.10+. */
  multiFilter: boolean;
  /** Stream `metadata`, `compression`, `sync_interval`. 2.10+. */
  streamMetadata: boolean;
  /** Per-message TTL (`Nats-TTL`) and KV per-key TTL / marker TTL. 2.11+. */
  perMessageTtl: boolean;
  /** Consumer priority groups. 2.11+. */
  priorityGroups: boolean;
}

export function featuresOf(versionText: string): ServerFeatures {
  const version = parseServerVersion(versionText);
  return {
    version,
    multiFilter: versionAtLeast(version, 2, 10),
    streamMetadata: versionAtLeast(version, 2, 10),
    perMessageTtl: versionAtLeast(version, 2, 11),
    priorityGroups: versionAtLeast(version, 2, 11),
  };
}

/** The gated features, by name. */
export type ServerFeature = Exclude<keyof ServerFeatures, "version">;

/** The first nats-server version with each feature. */
export const FEATURE_MIN_VERSION: Readonly<Record<ServerFeature, string>> = {
  multiFilter: "2.10.0",
  streamMetadata: "2.10.0",
  perMessageTtl: "2.11.0",
  priorityGroups: "2.11.0",
};

/**
 * Throws UnsupportedServerError (naming `what`, the version needed and the version connected to) unless the
 * server has `feature`. Call it before any use of a gated feature: on 2.9 several of them do nothing
 * without an error (per-key TTL), which must never pass silently.
 */
export function requireFeature(
  fabric: { readonly features: ServerFeatures },
  feature: ServerFeature,
  what: string,
): void {
  const features = fabric.features;
  if (features[feature]) return;
  throw new UnsupportedServerError(what, FEATURE_MIN_VERSION[feature], features.version.text);
}
