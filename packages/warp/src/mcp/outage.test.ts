import { Fabric, OUTAGE_GRACE_MS } from "@loominal/fabric";
import { connectInMemory, eventually, freePort, tempDir, uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { Warp } from "../warp.js";
import { projectConfig } from "../warp.test-helper.js";
import { createWarpServer } from "./server.js";

describe("warp MCP server during a NATS outage", () => {
  it("answers nats_unavailable at once once the outage is known, and answers local tools locally", async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const locks = tempDir("warp-locks-");
    const { config, cleanup } = projectConfig(url, uniqueProjectId());
    const fabric = Fabric.start({ nats: config.nats, reconnectDelayMs: 50, maxReconnectDelayMs: 200 });
    const warp = await Warp.open({ config, fabric, lockDir: locks.path });
    const client = await connectInMemory(createWarpServer(warp));
    try {
      await eventually(
        () => {
          if ((fabric.downForMs ?? 0) < OUTAGE_GRACE_MS) throw new Error("outage not known yet");
        },
        { timeoutMs: 10_000 },
      );
      // Needs no NATS: answered from this process.
      const me = await client.call("warp_handle_get");
      expect(me.isError).toBe(false);
      expect(me.structured?.agentId).toBe(warp.agentId);
      // Needs NATS: refused without waiting, even by a caller willing to wait a minute (this test's
      // timeout is far shorter, so waiting would fail it).
      await expect(warp.ready(60_000)).rejects.toMatchObject({ code: "nats_unavailable" });
      const sent = await client.call("warp_channels_send", { channel: "roadmap", message: "x" });
      expect(sent.error?.code).toBe("nats_unavailable");
      expect(sent.text).toContain(`NATS unreachable at ${url}`);
    } finally {
      await client.close();
      await warp.close();
      await fabric.close();
      cleanup();
      locks.cleanup();
    }
  }, 30_000);
});
