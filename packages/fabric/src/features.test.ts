import { NatsServer, natsServerVersion } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import { UnsupportedServerError } from "./errors.js";
import { featuresOf, requireFeature } from "./features.js";

describe("requireFeature", () => {
  let server: NatsServer;
  let fabric: Fabric;
  beforeAll(async () => {
    server = await NatsServer.start({ jetstream: false });
    fabric = await Fabric.connect({ nats: { servers: [server.url] } });
  });
  afterAll(async () => {
    await fabric?.close();
    await server?.stop();
  });

  it.runIf(natsServerVersion().startsWith("2.9."))(
    "refuses 2.10+ features on this 2.9 server, naming the version needed and the one connected to",
    () => {
      const have = fabric.features.version.text;
      expect(() => requireFeature(fabric, "multiFilter", "watching several key prefixes at once")).toThrow(
        `watching several key prefixes at once needs nats-server 2.10.0 or newer; this server is ${have}`,
      );
      let err: unknown;
      try {
        requireFeature(fabric, "perMessageTtl", "a per-key TTL");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsupportedServerError);
      expect((err as UnsupportedServerError).code).toBe("unsupported_server");
      expect((err as UnsupportedServerError).details).toEqual({
        feature: "a per-key TTL",
        need: "2.11.0",
        have,
      });
    },
  );

  it("lets a feature through when the server has it", () => {
    expect(() => requireFeature({ features: featuresOf("2.11.1") }, "perMessageTtl", "x")).not.toThrow();
    expect(() => requireFeature({ features: featuresOf("2.10.0") }, "priorityGroups", "x")).toThrow(
      /2\.11\.0/,
    );
  });
});
