// Section 2: what the governor costs per admitted request. Side by side in
// one run, against one simulator with limits set out of reach:
//   - the simulator directly;
//   - a bare pass-through Worker (bench/passthrough.mjs) in workerd;
//   - the governor (admission = one Durable Object call);
//   - the governor on an account whose list contains a terminal generation
//     (admission + an Observe call to release permits it may hold);
//   - two diagnostics: the governor's health route (the wasm Worker alone)
//     and its status route (one read-only Durable Object call).
// Fixed concurrency, a warm-up per target, then interleaved rounds in a
// rotating order, so that drift (CPU frequency, GC) spreads evenly.
import { startSim, startGovernor, generateBody, SIM_KEY } from "../tests/lib/harness.mjs";
import { now, sleep, pct, mean, req, pool, startPassthrough } from "./lib.mjs";

const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : Number(process.env[k]));
const KEY_B = "sk-sim-bench-b";

export function params() {
  return {
    concurrency: env("BENCH_OVERHEAD_CONCURRENCY", 8),
    warmup: env("BENCH_OVERHEAD_WARMUP", 300),
    rounds: env("BENCH_OVERHEAD_ROUNDS", 5),
    perRound: env("BENCH_OVERHEAD_PER_ROUND", 300),
    path: "/v2/generations?limit=1",
    windowMs: 1000,
    timeoutS: env("BENCH_OVERHEAD_TIMEOUT_S", 120),
  };
}

async function burst(url, key, count, concurrency, deadline) {
  const lat = [];
  let errors = 0;
  const t0 = now();
  await pool(
    count,
    concurrency,
    async () => {
      const r = await req(url, { headers: { "x-api-key": key } });
      if (r.status === 200) lat.push(r.ms);
      else errors++;
    },
    deadline,
  );
  return { lat, errors, wallMs: now() - t0 };
}

export async function runOverhead(P = params(), log = () => {}) {
  const sim = await startSim({
    key: [SIM_KEY, KEY_B],
    "window-ms": P.windowMs,
    "generate-per-minute": 1_000_000,
    "other-per-minute": 10_000_000,
    "pending-ms": 10,
    "processing-ms": 10,
  });
  let gov, pass;
  try {
    gov = await startGovernor({
      SYNC_API_BASE: sim.url,
      MAX_CONCURRENT_GENERATIONS: 100,
      GENERATE_PER_MINUTE: 100_000,
      REQUESTS_PER_MINUTE: 100_000,
      RATE_WINDOW_MS: P.windowMs,
      RATE_MARGIN_MS: 0,
    });
    pass = await startPassthrough(sim.url);
    // Account B owns one finished generation, so its list shows a terminal status.
    const made = await req(`${sim.url}/v2/generate`, {
      method: "POST",
      headers: { "x-api-key": KEY_B, "content-type": "application/json" },
      body: generateBody(),
    });
    await req(`${sim.url}/v2/generate/${made.json?.id}?wait=true&timeout=5`, { headers: { "x-api-key": KEY_B } });
    const targets = [
      { name: "simulator direct", url: sim.url + P.path, key: SIM_KEY },
      { name: "pass-through Worker", url: pass.url + P.path, key: SIM_KEY },
      { name: "governor", url: gov.url + P.path, key: SIM_KEY },
      { name: "governor, list shows a terminal generation (admit + observe)", url: gov.url + P.path, key: KEY_B, extra: true },
      // Diagnostics, to split the overhead: the wasm Worker alone (no Durable
      // Object, no upstream), and one read-only object call (no write, no upstream).
      { name: "diagnostic: governor /governor/v1/health (Worker only)", url: gov.url + "/governor/v1/health", key: SIM_KEY, extra: true },
      { name: "diagnostic: governor /governor/v1/status (one object call, no write)", url: gov.url + "/governor/v1/status", key: SIM_KEY, extra: true },
    ];
    const deadline = now() + P.timeoutS * 1000;
    for (const t of targets) {
      log(`section 2: warm-up ${t.name}`);
      t.result = { lat: [], errors: 0, wallMs: 0 };
      const w = await burst(t.url, t.key, P.warmup, P.concurrency, deadline);
      t.warmupErrors = w.errors;
    }
    for (let round = 0; round < P.rounds && now() < deadline; round++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(round + k) % targets.length];
        const b = await burst(t.url, t.key, P.perRound, P.concurrency, deadline);
        t.result.lat.push(...b.lat);
        t.result.errors += b.errors;
        t.result.wallMs += b.wallMs;
        await sleep(20);
      }
      log(`section 2: round ${round + 1}/${P.rounds} done`);
    }
    const stats = await sim.stats();
    const rows = targets.map((t) => ({
      name: t.name,
      extra: Boolean(t.extra),
      n: t.result.lat.length,
      errors: t.result.errors + t.warmupErrors,
      p50: pct(t.result.lat, 50),
      p99: pct(t.result.lat, 99),
      mean: mean(t.result.lat),
      rps: t.result.lat.length / (t.result.wallMs / 1000),
    }));
    return { params: P, rows, upstream429: stats.totals.rate_limited.other };
  } finally {
    await pass?.stop();
    await gov?.stop();
    await sim.stop();
  }
}
