// What one channel_subscribe read costs as the runner's channel stream grows: a direct get
// `next_by_subj` from sequence 1 (what the tool does with after_seq 0) of a topic that has a message and
// of one that has none, beside `last_by_subj` (the per-subject index), on a stream laid out like
// runner_channels (one subject per topic, one small message each) at growing sizes.
// Usage: node bench/runner-channel-read.mjs   (env: SIZES=1000,20000,50000,100000,200000 READS=300)
import { Fabric } from "@loominal/fabric";
import { benchServer, percentiles, report } from "./lib.mjs";

const SIZES = (process.env.SIZES ?? "1000,20000,50000,100000,200000").split(",").map(Number);
const READS = Number(process.env.READS ?? 300);
const STREAM = "BENCH_CHANNELS";

const server = await benchServer();
const fabric = await Fabric.connect({ nats: { servers: [server.url] }, name: "bench-channel-read" });
try {
  const jsm = await fabric.jsm();
  await jsm.streams.add({
    name: STREAM,
    subjects: ["bench.channel.>"],
    allow_direct: true,
    max_msgs_per_subject: 1_000,
  });
  const body = JSON.stringify({
    topic: "research-done/c1",
    message: { key: "c1-research" },
    run_id: "0".repeat(32),
    agent: "mock-researcher",
    published_at: new Date().toISOString(),
  });
  const topic = (i) => `bench.channel.user.c${i}.done`;
  const rows = [];
  let stored = 0;
  for (const size of SIZES) {
    const pending = [];
    while (stored < size) {
      pending.push(fabric.js.publish(topic(stored), body));
      stored++;
      if (pending.length >= 500) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const time = async (read) => {
      const ms = [];
      for (let i = 0; i < READS; i++) {
        const t = performance.now();
        await read(i).catch(() => undefined);
        ms.push(performance.now() - t);
      }
      return percentiles(ms);
    };
    const pick = () => topic(Math.floor(Math.random() * stored));
    rows.push({
      messages: stored,
      nextBySubjectPresentMs: await time(() =>
        jsm.direct.getMessage(STREAM, { next_by_subj: pick(), seq: 1 }),
      ),
      nextBySubjectAbsentMs: await time((i) =>
        jsm.direct.getMessage(STREAM, { next_by_subj: `bench.channel.user.none${i}.done`, seq: 1 }),
      ),
      lastBySubjectMs: await time(() => jsm.direct.getMessage(STREAM, { last_by_subj: pick() })),
    });
  }
  report("runner-channel-read", { reads: READS, rows });
} finally {
  await fabric.close();
  await server.stop();
}
