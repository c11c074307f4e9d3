import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { eventually } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { processAlive } from "./host.js";

describe("processAlive", () => {
  it("a live process is alive; an exited one that its parent has not reaped (a zombie) is not", async () => {
    // sh starts a short child, prints its pid, and becomes `sleep`, which never reaps it.
    const parent = spawn("sh", ["-c", "sleep 0.2 & echo $!; exec sleep 30"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    try {
      const pid = await new Promise<number>((resolve) =>
        parent.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim()))),
      );
      expect(processAlive(pid)).toBe(true);
      if (existsSync("/proc/self/stat"))
        await eventually(() => expect(processAlive(pid)).toBe(false), { timeoutMs: 5_000 });
      expect(processAlive(parent.pid ?? 0)).toBe(true);
    } finally {
      parent.kill("SIGKILL");
    }
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(0)).toBe(false);
    expect(processAlive(-1)).toBe(false);
  });
});
