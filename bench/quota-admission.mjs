// Per-user quota admission, the same workload on two implementations side by side:
//  - PostgreSQL, as the Postgres-backed runtime does it: UPDATE quota SET active = active + 1
//    WHERE user_id = $1 AND active < cap (RETURNING), and active - 1 on release;
//  - the runner's own QuotaStore: a set of run ids per user in JetStream KV, changed by compare-and-set.
// Workers spread over 2 clients (2 connections / 2 pools, as 2 replicas) acquire a slot for a random user
// and release it; a refused acquire (user at cap) counts as a refusal. Scenarios: many users (little
// contention) and few users (every worker fights over the same keys). Both sides are checked: no user
// ever held more than its cap, and every slot is free afterwards.
// OPS pairs per round; the sides alternate for ROUNDS rounds and the median round of each is reported.
// Usage: node bench/quota-admission.mjs   (env: QUOTA_PG_URL=postgres://postgres@127.0.0.1:5432/test,
//        OPS=1500 ROUNDS=5 WORKERS=64 HOLD_MS=1 MAX_MS=20000; a slot is held HOLD_MS between acquire and release). Without a reachable PostgreSQL only the KV side runs, and it says so.
import { ensureBucket, Fabric } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { bucketSpecs, QuotaStore } from "@loominal/runner";
import pg from "pg";
import { benchServer, percentiles, report, since } from "./lib.mjs";

const PG_URL = process.env.QUOTA_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const OPS = Number(process.env.OPS ?? 1_500);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const WORKERS = Number(process.env.WORKERS ?? 64);
const MAX_MS = Number(process.env.MAX_MS ?? 20_000);
const HOLD_MS = Number(process.env.HOLD_MS ?? 1);
const CAP = 8;
const CLIENTS = 2;
const SCENARIOS = [
  { name: "1000 users", users: 1_000 },
  { name: "10 users (contended)", users: 10 },
];

/** Runs `OPS` acquire/release pairs over WORKERS lanes; `impl(client)` gives acquire/release. */
async function drive(label, scenario, clients) {
  const held = new Map();
  let overCap = 0;
  let admitted = 0;
  let refused = 0;
  let errors = 0;
  const acquireMs = [];
  const t0 = performance.now();
  let next = 0;
  const lane = async (w) => {
    const c = clients[w % clients.length];
    while (next < OPS && since(t0) < MAX_MS) {
      next++;
      const user = `u${Math.floor(Math.random() * scenario.users)}`;
      const runId = randomId();
      const a0 = performance.now();
      let ok;
      try {
        ok = await c.acquire(user, runId);
      } catch {
        errors++;
        continue;
      }
      acquireMs.push(since(a0));
      if (!ok) {
        refused++;
        continue;
      }
      admitted++;
      // Counted from the admitted answer to just before the release, the local count never exceeds the
      // stored one: above the cap here means above the cap there.
      const n = (held.get(user) ?? 0) + 1;
      held.set(user, n);
      if (n > CAP) overCap++;
      await new Promise((r) => setTimeout(r, HOLD_MS));
      held.set(user, held.get(user) - 1);
      await c.release(user, runId);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => lane(w)));
  const elapsedMs = since(t0);
  return {
    impl: label,
    scenario: scenario.name,
    users: scenario.users,
    attempts: admitted + refused,
    admitted,
    refused,
    errors,
    overCap,
    elapsedMs: Math.round(elapsedMs),
    admissionsPerSecond: Math.round((admitted / elapsedMs) * 1000),
    acquireMs: percentiles(acquireMs),
  };
}

async function postgres() {
  const probe = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await probe.connect();
  } catch (err) {
    return { skipped: `PostgreSQL not reachable at ${PG_URL.replace(/\/\/[^@]*@/, "//…@")}: ${err.message}` };
  }
  const table = `quota_bench_${randomId().slice(0, 8)}`;
  await probe.query(
    `CREATE TABLE ${table} (user_id text PRIMARY KEY, active int NOT NULL DEFAULT 0, cap int NOT NULL)`,
  );
  const pools = Array.from(
    { length: CLIENTS },
    () => new pg.Pool({ connectionString: PG_URL, max: Math.max(1, Math.floor(WORKERS / CLIENTS / 2)) }),
  );
  const clients = pools.map((pool) => ({
    async acquire(user) {
      const r = await pool.query(
        `UPDATE ${table} SET active = active + 1 WHERE user_id = $1 AND active < cap RETURNING active`,
        [user],
      );
      return r.rowCount === 1;
    },
    async release(user) {
      await pool.query(`UPDATE ${table} SET active = active - 1 WHERE user_id = $1 AND active > 0`, [user]);
    },
  }));
  return {
    async run(scenario) {
      await probe.query(`TRUNCATE ${table}`);
      await probe.query(
        `INSERT INTO ${table} (user_id, active, cap) SELECT 'u' || g, 0, $1 FROM generate_series(0, $2 - 1) g`,
        [CAP, scenario.users],
      );
      const r = await drive("postgres", scenario, clients);
      const left = await probe.query(`SELECT coalesce(sum(active), 0)::int AS n FROM ${table}`);
      return { ...r, slotsHeldAfter: left.rows[0].n };
    },
    async close() {
      await probe.query(`DROP TABLE IF EXISTS ${table}`);
      await Promise.all(pools.map((p) => p.end()));
      await probe.end();
    },
    version: (await probe.query("SHOW server_version")).rows[0].server_version,
  };
}

async function kvCas(url) {
  const fabrics = await Promise.all(
    Array.from({ length: CLIENTS }, () => Fabric.connect({ nats: { servers: [url] } })),
  );
  let stores;
  return {
    async run(scenario) {
      const spec = {
        ...bucketSpecs({ replicaTtlMs: 5_000, lockTtlMs: 30_000 }).quotas,
        name: `quota-bench-${randomId().slice(0, 8)}`,
      };
      const kvs = await Promise.all(fabrics.map((f) => ensureBucket(f, spec)));
      stores = kvs.map((kv) => new QuotaStore(kv));
      const clients = stores.map((q, i) => ({
        async acquire(user, runId) {
          return (await q.acquire(user, runId, `bench-${i}`, CAP)).admitted;
        },
        release: (user, runId) => q.release(user, [runId]),
      }));
      const r = await drive("nats-kv-cas", scenario, clients);
      const left = (await stores[0].all()).reduce((n, q) => n + Object.keys(q.runs).length, 0);
      return { ...r, slotsHeldAfter: left };
    },
    async close() {
      await Promise.all(fabrics.map((f) => f.close()));
    },
  };
}

const server = await benchServer();
const kv = await kvCas(server.url);
const pgSide = await postgres();
if (pgSide.skipped) process.stderr.write(`# ${pgSide.skipped}; measuring the KV side only\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const scenario of SCENARIOS) {
    // The machine is shared: the two sides alternate in short rounds so both see the same load, and the
    // median round of each is compared.
    const rounds = { kv: [], pg: [] };
    for (let round = 0; round < ROUNDS; round++) {
      rounds.kv.push(await kv.run(scenario));
      if (!pgSide.skipped) rounds.pg.push(await pgSide.run(scenario));
    }
    const summary = (rs) => {
      const rates = rs.map((r) => r.admissionsPerSecond);
      const mid = rs.find((r) => r.admissionsPerSecond === median(rates));
      return {
        ...mid,
        roundsPerSecond: rates,
        admissionsPerSecond: median(rates),
        overCap: rs.reduce((n, r) => n + r.overCap, 0),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        slotsHeldAfter: Math.max(...rs.map((r) => r.slotsHeldAfter)),
      };
    };
    const setup = { workers: WORKERS, holdMs: HOLD_MS, clients: CLIENTS, cap: CAP, rounds: ROUNDS };
    const k = summary(rounds.kv);
    report("quota-admission", { ...setup, ...k });
    if (pgSide.skipped) continue;
    const p = summary(rounds.pg);
    report("quota-admission", { ...setup, postgres: pgSide.version, ...p });
    report("quota-admission-ratio", {
      scenario: scenario.name,
      kvOverPostgres: Math.round((k.admissionsPerSecond / Math.max(1, p.admissionsPerSecond)) * 100) / 100,
    });
  }
} finally {
  await kv.close();
  if (!pgSide.skipped) await pgSide.close();
  await server.stop();
}
