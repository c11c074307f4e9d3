// The mechanisms a Weft serves with besides `local` (which Weft always has).
import type { Logger } from "@loominal/fabric";
import type { SecretSource } from "./common.js";
import { GithubActionsMechanism } from "./github-actions.js";
import { KubernetesMechanism } from "./kubernetes.js";
import { SshMechanism } from "./ssh.js";
import type { Mechanism } from "./types.js";
import { WebhookMechanism } from "./webhook.js";

export interface RemoteMechanismOptions {
  logger: Logger;
  /** Weft's data directory (the ssh mechanism records accepted host keys there). */
  dataDir: string;
  /** Where secrets named by target configs are read (default: Weft's environment). */
  secrets?: SecretSource;
}

/** Every remote mechanism: webhook, ssh, kubernetes, github-actions. */
export function remoteMechanisms(options: RemoteMechanismOptions): Mechanism[] {
  return [
    new WebhookMechanism(options),
    new SshMechanism(options),
    new KubernetesMechanism(options),
    new GithubActionsMechanism(options),
  ];
}
