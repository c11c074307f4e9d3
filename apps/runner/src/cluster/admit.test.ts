import { Fabric } from "@loominal/fabric";
import { subjects } from "@loominal/protocol";
import { NatsServer } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRunnerConfig } from "../env.js";
import { AdmissionPuller, type AdmitMsg } from "./admit.js";
import { openStores } from "./stores.js";

let server: NatsServer;
let fabric: Fabric;

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
  await openStores(fabric, loadRunnerConfig({}));
});
afterAll(async () => {
  await fabric.close();
  await server.stop();
});

describe("AdmissionPuller", () => {
  it("takes run requests from the admission consumer, and the server's end of a pull ends it", async () => {
    const got: AdmitMsg[] = [];
    const puller = new AdmissionPuller(fabric.nc, (m) => got.push(m), { expiresMs: 200 });
    try {
      for (const n of [1, 2, 3]) {
        await fabric.js.publish(subjects.runnerAdmit(), new TextEncoder().encode(`{"n":${n}}`));
      }
      // Three waiting, ten asked for: the pull ends on the server's 408 with the three.
      expect(await puller.pull(10)).toBe(3);
      expect(got.map((m) => new TextDecoder().decode(m.data))).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
      for (const m of got) m.ack();
      // A full batch ends the pull at once.
      await fabric.js.publish(subjects.runnerAdmit(), new TextEncoder().encode('{"n":4}'));
      expect(await puller.pull(1)).toBe(1);
      got[3]?.ack();
      expect(puller.open).toBe(0);
    } finally {
      await puller.close();
    }
  });

  it("ends a pull the server has not reported ended, and still hands over what it delivers on it later", async () => {
    // This side stops waiting for the pull long before the server ends it (as when nats-server 2.9 does not
    // send the 408 of an expired pull); a request published meanwhile is delivered on that pull.
    const got: AdmitMsg[] = [];
    const puller = new AdmissionPuller(fabric.nc, (m) => got.push(m), { expiresMs: 3_000, waitMs: 20 });
    try {
      expect(await puller.pull(5)).toBe(0);
      expect(puller.open).toBe(0);
      await fabric.js.publish(subjects.runnerAdmit(), new TextEncoder().encode('{"late":true}'));
      await expect.poll(() => got.length).toBe(1);
      expect(new TextDecoder().decode(got[0]?.data)).toBe('{"late":true}');
      expect(got[0]?.reply).toMatch(/^\$JS\.ACK\.runner_admit\./);
      got[0]?.ack();
    } finally {
      await puller.close();
    }
  });
});
