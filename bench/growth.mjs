// Section 6: how admission cost grows with the account (issue 9, must-show).
// The latency of an admitted `GET /v2/generations?limit=1` through the
// governor, on accounts of different sizes measured side by side in one
// governor, in interleaved rounds (rotating order), at a sequential client
// and at concurrency 8:
//   - an empty account, and a second empty one (A/A control: the noise);
//   - accounts holding 1,000 and 10,000 idempotency records (that many
//     creates, each with its own `Idempotency-Key`);
//   - accounts with 0, 100 and 1,000 jobs waiting in the queue
//     (`Prefer: respond-async` while every permit is held by a generation
//     that does not end during the run); the 0 row has the same permits held
//     and nothing waiting, so it separates the queue from the held permits;
//   - the simulator directly (the upstream floor).
// Pass-through mode: each account is named by its own Sync key (the
// simulator accepts several `--key`s).
//
// How the accounts are filled (all loopback, every loop bounded in count and
// time):
//   1. governor A (concurrency cap 10,000, so keyed creates never wait for a
//      permit; the simulator ends each generation at once and its webhook
//      frees the permit) takes the keyed creates;
//   2. once every permit is free, governor A stops with its state kept, the
//      simulator is reset (its generations are forgotten, so that its list
//      route costs the same for every key: it scans all generations) and its
//      generations now last an hour;
//   3. governor B starts on the same persisted state with a cap of `cap`
//      permits: each queue account gets `cap` creates (in flight for the
//      whole run), then N `Prefer: respond-async` creates that wait (202);
//   4. every account's size is read from `GET /governor/v1/status` before
//      and after the measurement (queue.depth, storage.idempotency.count,
//      concurrency.inUse).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSim, startGovernor, generateBody } from "../tests/lib/harness.mjs";
import { now, sleep, pct, mean, req, pool } from "./lib.mjs";

const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : Number(process.env[k]));
const list = (k, d) =>
  (process.env[k] === undefined || process.env[k] === "" ? d : process.env[k].split(",").map(Number)).filter((n) => Number.isInteger(n) && n >= 0);
const WEBHOOK_KEY = "growth-bench-webhook-key-0123456"; // 32 characters

export function params() {
  const concurrencies = list("BENCH_GROWTH_CONCURRENCY", [1, 8]).filter((c) => c > 0);
  return {
    concurrencies,
    idempotency: list("BENCH_GROWTH_IDEMPOTENCY", [0, 1_000, 10_000]),
    queue: list("BENCH_GROWTH_QUEUE", [0, 100, 1_000]),
    cap: env("BENCH_GROWTH_CAP", 4), // permits held on every queue account
    fillConcurrency: env("BENCH_GROWTH_FILL_CONCURRENCY", 12),
    fillTimeoutS: env("BENCH_GROWTH_FILL_TIMEOUT_S", 150),
    warmup: env("BENCH_GROWTH_WARMUP", 40),
    rounds: env("BENCH_GROWTH_ROUNDS", 12),
    perRound: env("BENCH_GROWTH_PER_ROUND", 100),
    timeoutS: env("BENCH_GROWTH_TIMEOUT_S", 90), // per concurrency
    path: "/v2/generations?limit=1",
    windowMs: 2_000,
  };
}

async function status(gov, key) {
  const r = await req(`${gov.url}/governor/v1/status`, { headers: { "x-api-key": key } });
  const s = r.json ?? {};
  return {
    httpStatus: r.status,
    queueDepth: s.queue?.depth ?? null,
    idempotency: s.storage?.idempotency?.count ?? null,
    idempotencyBytes: s.storage?.idempotency?.bytes ?? null,
    queueBytes: s.storage?.queue?.bytes ?? null,
    inUse: s.concurrency?.inUse ?? s.concurrency?.in_use ?? null,
  };
}

/** POST /v2/generate through the governor with a few bounded retries; returns the last status. */
async function create(gov, key, headers, want, deadline) {
  let r;
  for (let attempt = 0; attempt < 6 && now() < deadline; attempt++) {
    r = await req(`${gov.url}/v2/generate`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json", ...headers },
      body: generateBody(),
      timeoutMs: 30_000,
    });
    if (want.includes(r.status)) return r.status;
    await sleep(20 * (attempt + 1));
  }
  return r?.status ?? 0;
}

async function burst(url, headers, count, concurrency, deadline) {
  const lat = [];
  let errors = 0;
  const t0 = now();
  await pool(
    count,
    concurrency,
    async () => {
      const r = await req(url, { headers });
      if (r.status === 200) lat.push(r.ms);
      else errors++;
    },
    deadline,
  );
  return { lat, errors, wallMs: now() - t0 };
}

const tally = (m, s) => (m[s] = (m[s] ?? 0) + 1);

export async function runGrowth(P = params(), log = () => {}) {
  const t0 = now();
  const accounts = [];
  const key = (id) => `sk-sim-growth-${id}`;
  accounts.push({ id: "empty", group: "idempotency", size: 0, key: key("empty"), name: "empty account" });
  accounts.push({ id: "empty-aa", group: "control", size: 0, key: key("empty-aa"), name: "a second empty account (A/A control)" });
  for (const n of P.idempotency.filter((n) => n > 0))
    accounts.push({ id: `idem-${n}`, group: "idempotency", size: n, key: key(`idem-${n}`), name: `${n.toLocaleString("en")} idempotency records` });
  for (const n of P.queue)
    accounts.push({
      id: `queue-${n}`,
      group: "queue",
      size: n,
      key: key(`queue-${n}`),
      name: `${n.toLocaleString("en")} jobs waiting (${P.cap} generations in flight)`,
    });
  const sim = await startSim({
    key: accounts.map((a) => a.key),
    "window-ms": 1000,
    "generate-per-minute": 1_000_000,
    "other-per-minute": 10_000_000,
    concurrency: 100_000,
    "pending-ms": 0,
    "processing-ms": 1,
  });
  const dir = mkdtempSync(join(tmpdir(), "sync-governor-growth-"));
  const vars = (cap) => ({
    SYNC_API_BASE: sim.url,
    MAX_CONCURRENT_GENERATIONS: cap,
    GENERATE_PER_MINUTE: 100_000,
    REQUESTS_PER_MINUTE: 100_000,
    RATE_WINDOW_MS: P.windowMs,
    RATE_MARGIN_MS: 0,
    IDEMPOTENCY_MAX_RECORDS: 1_000_000,
    IDEMPOTENCY_MAX_BYTES: 1 << 30,
    QUEUE_MAX_DEPTH: 100_000,
    GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
    LOCAL_MODE: "true",
    // No background reconciliation during the run (nothing is lost here).
    RECONCILE_MIN_MS: 3_600_000,
    RECONCILE_MAX_MS: 3_600_000,
  });
  let gov;
  try {
    // ---- 1. keyed creates on governor A
    const fillDeadline = t0 + P.fillTimeoutS * 1000;
    gov = await startGovernor(vars(10_000), { persistDir: dir });
    const fill = { idempotency: {}, queue: {} };
    const tasks = accounts.filter((a) => a.group === "idempotency" && a.size > 0).flatMap((a) => Array.from({ length: a.size }, (_, i) => [a, i]));
    const tf = now();
    const statuses = {};
    const started = await pool(
      tasks.length,
      P.fillConcurrency,
      async (j) => {
        const [a, i] = tasks[j];
        tally(statuses, await create(gov, a.key, { "idempotency-key": `growth-${a.id}-${i}` }, [201], fillDeadline));
      },
      fillDeadline,
    );
    fill.idempotency = { creates: tasks.length, started, statuses, seconds: (now() - tf) / 1000 };
    log(`section 6: ${started}/${tasks.length} keyed creates in ${fill.idempotency.seconds.toFixed(1)} s: ${JSON.stringify(statuses)}`);
    // Every permit freed by its webhook before the simulator forgets the generations.
    for (let i = 0; i < 200 && now() < fillDeadline + 20_000; i++) {
      const inUse = await Promise.all(accounts.map(async (a) => (await status(gov, a.key)).inUse));
      if (inUse.every((n) => n === 0)) break;
      await sleep(100);
    }
    await gov.stop({ keepState: true });
    gov = undefined;

    // ---- 2. simulator: forget, and generations that outlast the run
    await sim.reset();
    await sim.configure({ pending_ms: 0, processing_ms: 3_600_000 });

    // ---- 3. governor B: held permits, waiting jobs
    gov = await startGovernor(vars(P.cap), { persistDir: dir });
    const tq = now();
    const qStatuses = {};
    for (const a of accounts.filter((a) => a.group === "queue")) {
      for (let i = 0; i < P.cap && now() < fillDeadline + 30_000; i++) tally(qStatuses, `direct ${await create(gov, a.key, {}, [201], fillDeadline + 30_000)}`);
      await pool(
        a.size,
        P.fillConcurrency,
        async () => tally(qStatuses, `async ${await create(gov, a.key, { prefer: "respond-async" }, [202], fillDeadline + 30_000)}`),
        fillDeadline + 30_000,
      );
    }
    fill.queue = { statuses: qStatuses, seconds: (now() - tq) / 1000 };
    log(`section 6: queue accounts filled in ${fill.queue.seconds.toFixed(1)} s: ${JSON.stringify(qStatuses)}`);

    // ---- 4. sizes before
    for (const a of accounts) a.before = await status(gov, a.key);
    log(`section 6: sizes ${accounts.map((a) => `${a.id}: queue ${a.before.queueDepth}, records ${a.before.idempotency}, in use ${a.before.inUse}`).join("; ")}`);

    // ---- 5. measure
    const targets = [
      ...accounts.map((a) => ({ ...a, url: gov.url + P.path, headers: { "x-api-key": a.key } })),
      { id: "direct", group: "reference", size: 0, name: "simulator direct (empty account's key)", url: sim.url + P.path, headers: { "x-api-key": key("empty") } },
    ];
    const runs = [];
    for (const c of P.concurrencies) {
      const tc = now();
      const deadline = tc + P.timeoutS * 1000;
      const res = new Map(targets.map((t) => [t.id, { lat: [], errors: 0, wallMs: 0, roundP50: [] }]));
      for (const t of targets) res.get(t.id).errors += (await burst(t.url, t.headers, P.warmup, c, deadline)).errors;
      let rounds = 0;
      for (let round = 0; round < P.rounds && now() < deadline; round++) {
        for (let j = 0; j < targets.length; j++) {
          const t = targets[(round + j) % targets.length];
          const r = res.get(t.id);
          const b = await burst(t.url, t.headers, P.perRound, c, deadline);
          r.lat.push(...b.lat);
          r.errors += b.errors;
          r.wallMs += b.wallMs;
          r.roundP50.push(pct(b.lat, 50));
          await sleep(10);
        }
        rounds++;
      }
      log(`section 6: concurrency ${c}: ${rounds} rounds in ${((now() - tc) / 1000).toFixed(1)} s`);
      runs.push({
        concurrency: c,
        rounds,
        timedOut: rounds < P.rounds,
        wallS: (now() - tc) / 1000,
        rows: targets.map((t) => {
          const r = res.get(t.id);
          return {
            id: t.id,
            group: t.group,
            size: t.size,
            name: t.name,
            n: r.lat.length,
            errors: r.errors,
            p50: pct(r.lat, 50),
            p99: pct(r.lat, 99),
            mean: mean(r.lat),
            rps: r.lat.length / (r.wallMs / 1000),
            roundP50: r.roundP50,
          };
        }),
      });
    }

    // ---- 6. sizes after (nothing dispatched, nothing expired)
    for (const a of accounts) a.after = await status(gov, a.key);
    const stats = await sim.stats();
    return {
      params: P,
      fill,
      accounts: accounts.map(({ id, group, size, name, before, after }) => ({ id, group, size, name, before, after })),
      runs,
      upstream429: (stats.totals?.rate_limited?.other ?? 0) + (stats.totals?.rate_limited?.generate ?? 0) + (stats.totals?.concurrency_limited ?? 0),
    };
  } finally {
    await gov?.stop({ keepState: true }).catch(() => {});
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
