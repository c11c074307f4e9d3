/**
 * Spots content that looks like a credential. Memories are shared with other agents and persisted,
 * so the writer is told (the memory is still stored: the agent decides whether to forget it).
 */
interface SecretRule {
  kind: string;
  pattern: RegExp;
}

const RULES: readonly SecretRule[] = [
  { kind: "private key", pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/ },
  { kind: "AWS access key id", pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: "GitHub token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b/ },
  { kind: "GitLab token", pattern: /\bglpat-[A-Za-z0-9_-]{20,}\b/ },
  { kind: "Slack token", pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/ },
  { kind: "Anthropic or OpenAI API key", pattern: /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}\b/ },
  { kind: "Google API key", pattern: /\bAIza[0-9A-Za-z_-]{35}\b/ },
  { kind: "Stripe key", pattern: /\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b/ },
  { kind: "NATS nkey seed", pattern: /\bS[UOACN]A[A-Z2-7]{55}\b/ },
  { kind: "JSON web token", pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { kind: "bearer token", pattern: /\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*/ },
  { kind: "credentials in a URL", pattern: /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:[^\s/@]{3,}@/i },
  {
    kind: "password or secret assignment",
    pattern:
      /(?<![a-z0-9])(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|client[_-]?secret|private[_-]?key)["']?\s*[:=]\s*["']?[^\s"']{8,}/i,
  },
];

/** The kinds of secret `content` seems to contain; empty when none. */
export function detectSecrets(content: string): string[] {
  const found: string[] = [];
  for (const rule of RULES) {
    if (rule.pattern.test(content)) found.push(rule.kind);
  }
  return found;
}

/** The warning shown to the agent for the kinds `detectSecrets` found. */
export function secretWarning(memoryId: string, kinds: readonly string[]): string {
  return `memory ${memoryId} looks like it contains a secret (${kinds.join(", ")}); memories are persisted and may be read by other agents, so remove it with pattern_forget {memoryId: "${memoryId}"} and store a reference (an env var name or vault path) instead`;
}
