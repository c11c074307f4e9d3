import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import { parseAckSubject, pull, pullStats, readAll } from "./pull.js";
import { ensureStream } from "./streams.js";

const servers: NatsServer[] = [];
const fabrics: Fabric[] = [];
const dirs: Array<{ cleanup(): void }> = [];

afterAll(async () => {
  await Promise.all(fabrics.map((f) => f.close()));
  await Promise.all(servers.map((s) => s.stop()));
  for (const d of dirs) d.cleanup();
});

async function open(url: string, extra: { jetstreamDomain?: string } = {}): Promise<Fabric> {
  const f = await Fabric.connect({ nats: { servers: [url] }, ...extra });
  fabrics.push(f);
  return f;
}

async function fillStream(f: Fabric) {
  const name = `pull_${uniqueProjectId().replace(/-/g, "_")}`;
  await ensureStream(f, { name, subjects: [`${name}.>`] });
  for (const [i, who] of ["a", "b", "a", "c", "a"].entries()) await f.js.publish(`${name}.${who}`, `m${i}`);
  return name;
}

describe("readAll: a temporary consumer, pulled until nothing is pending, then deleted", () => {
  it("reads what matches from a start sequence, with sequences, and leaves no consumer behind", async () => {
    const s = await NatsServer.start();
    servers.push(s);
    const f = await open(s.url);
    const stream = await fillStream(f);
    const r = await readAll(f, stream, {
      filterSubject: `${stream}.a`,
      start: { from: "sequence", seq: 2 },
      idleMs: 10_000,
      batch: 1,
    });
    expect(r.unparsed).toBe(0);
    expect(r.messages.map((m) => [m.streamSeq, new TextDecoder().decode(m.data)])).toEqual([
      [3, "m2"],
      [5, "m4"],
    ]);
    const jsm = await f.jsm();
    await eventually(async () => expect(await jsm.consumers.list(stream).next()).toEqual([]));
  });

  it("works through a JetStream domain (API prefix $JS.<domain>.API)", async () => {
    const dir = tempDir("pull-domain-");
    dirs.push(dir);
    const conf = join(dir.path, "server.conf");
    writeFileSync(conf, `jetstream { store_dir: "${join(dir.path, "js")}", domain: hub }\n`);
    const s = await NatsServer.start({ configFile: conf, jetstream: false });
    servers.push(s);
    const f = await open(s.url, { jetstreamDomain: "hub" });
    expect(f.apiPrefix).toBe("$JS.hub.API");
    const stream = await fillStream(f);
    const r = await readAll(f, stream, {
      filterSubject: `${stream}.>`,
      start: { from: "lastPerSubject" },
      idleMs: 10_000,
    });
    expect(r.messages.map((m) => m.subject.split(".").pop()).sort()).toEqual(["a", "b", "c"]);
    expect(r.messages.every((m) => m.streamSeq > 0)).toBe(true);
  });
});

describe("readAll from the last message per subject", () => {
  it("returns each subject once, as of when the read began, while the subjects are being written", async () => {
    const s = await NatsServer.start();
    servers.push(s);
    const f = await open(s.url);
    const name = `lps_${uniqueProjectId().replace(/-/g, "_")}`;
    await ensureStream(f, { name, subjects: [`${name}.>`] });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    for (const k of keys) await f.js.publish(`${name}.${k}`, "0");
    // A writer rewrites the first keys while the read pulls one message at a time (40 round trips), as agents
    // heartbeat while their registry is scanned: the consumer delivers those new writes too.
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing && writes < 2_000) {
        await f.js.publish(`${name}.${keys[writes % 4]}`, String(++writes));
      }
    })();
    const r = await readAll(f, name, {
      filterSubject: `${name}.>`,
      start: { from: "lastPerSubject" },
      idleMs: 10_000,
      batch: 1,
    });
    writing = false;
    await writer;
    const subjects = r.messages.map((m) => m.subject);
    expect(subjects.length).toBe(keys.length);
    expect(new Set(subjects).size).toBe(keys.length);
    const seqs = r.messages.map((m) => m.streamSeq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(writes).toBeGreaterThan(0);
  });
});

describe("pull", () => {
  it("never drops a message without a trace: one whose reply subject does not parse is counted and logged", async () => {
    // A server without JetStream, and this test answering the pull request in JetStream's place with
    // messages whose reply subject is not an ack subject (a server refuses to relay a client's message
    // with a real `$JS.ACK` reply, so only malformed ones can be made here).
    const s = await NatsServer.start({ jetstream: false });
    servers.push(s);
    const f = await open(s.url);
    const responder = f.nc.subscribe("$JS.API.CONSUMER.MSG.NEXT.S.C", {
      callback: (_err, req) => {
        if (!req.reply) return;
        f.nc.publish(req.reply, "one", { reply: "not.an.ack.subject" });
        f.nc.publish(req.reply, "two");
      },
    });
    try {
      const before = pullStats(f).unparsed;
      const r = await pull(f, "S", "C", 2, 2_000);
      expect(r.messages).toEqual([]);
      expect(r.unparsed).toBe(2);
      expect(pullStats(f).unparsed).toBe(before + 2);
    } finally {
      responder.unsubscribe();
    }
  });

  it("parses both ack subject layouts and refuses others", () => {
    expect(parseAckSubject("$JS.ACK.S.C.2.10.4.1700000000000000000.3")).toEqual({
      deliveryCount: 2,
      streamSeq: 10,
      storedAtMs: 1_700_000_000_000,
      pending: 3,
    });
    expect(parseAckSubject("$JS.ACK.hub.ACC.S.C.1.11.5.1700000000000000000.0.tok")?.streamSeq).toBe(11);
    expect(parseAckSubject("$JS.ACK.S.C.x.y.z.t.p")).toBeUndefined();
    expect(parseAckSubject("_INBOX.abc")).toBeUndefined();
  });
});
