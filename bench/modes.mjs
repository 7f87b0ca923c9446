// Section 7: what shadow mode, metrics and decision logs cost on the
// admission path (operations issue: "shadow mode and metrics cost nothing
// measurable on the admission path, p50 within noise of enforce mode, same
// run"). One simulator (limits out of reach) and one workerd per governor
// configuration, all started through tests/lib/harness.mjs with the same
// options:
//   a   enforce, LOG_LEVEL=off: the baseline (metrics counting is always on
//       in the core: per-account counters in the account's object, flushed
//       to storage at most every 10 s, and the per-isolate tally of upstream
//       statuses and added latency that rides along with the next admission);
//   a'  the same configuration in a second workerd: the A/A control, i.e.
//       what "within noise" means on this machine;
//   b   enforce, LOG_LEVEL=info: one JSON decision line per admission;
//   c   GOVERNOR_MODE=shadow, LOG_LEVEL=off;
//   d   the release before the operations features (BENCH_MODES_BASE_COMMIT,
//       default 87718ec: no metrics, no tally, no decision logs, no shadow
//       mode), built by scripts/build-base.sh into its own directory; so the
//       cost of metrics is measured, not asserted. Not measured (and said so)
//       when that build is missing;
//   e   optional: the previous build (BENCH_MODES_PREV_COMMIT, e.g. f89376c,
//       the tree before the driver refactor; BENCH_MODES_PREV_DIR, default
//       ${TMPDIR:-/tmp}/sync-governor-base-<commit>; BENCH_MODES_PREV_LABEL),
//       built by scripts/build-base.sh, with LOG_LEVEL=off as (a): this
//       build's admission latency beside the previous one's, same run;
// plus the simulator directly, so that each p50 can also be read as what the
// governor adds to Sync's own time.
// Measured per configuration: an admitted read (`GET /v2/generations?limit=1`
// on an account that never creates, as in section 2) and an admitted create
// (`POST /v2/generate` on a second account; each create is followed by an
// unmeasured long-poll of its generation through the same governor, which
// sees it terminal and frees the permit, so permits never pile up).
// For each concurrency (default 1 and 8): a warm-up per target, then
// interleaved rounds in a rotating order (as section 2), so that drift on
// this noisy machine spreads evenly. Ratios to (a) come with a 95 % interval
// from a bootstrap over rounds (rounds resampled with replacement, the
// target and (a) kept paired), next to the A/A control.
// Workerd's stdout/stderr (the decision log lines) is read by a counting
// sink in this process, for every configuration alike. Every loop is
// bounded in count and time; loopback only.
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSim, startGovernor, generateBody, SIM_KEY } from "../tests/lib/harness.mjs";
import { now, sleep, pct, mean, req, pool } from "./lib.mjs";

const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : Number(process.env[k]));
const list = (k, d) =>
  (process.env[k] === undefined || process.env[k] === "" ? d : process.env[k].split(",").map(Number)).filter((n) => Number.isInteger(n) && n > 0);
const CREATE_KEY = "sk-sim-modes-create";

export const baseCommit = () => process.env.BENCH_MODES_BASE_COMMIT || "87718ec";
/** Where scripts/build-base.sh puts the earlier release's build (same defaults). */
export function baseBuild() {
  if (process.env.BENCH_MODES_BASE_BUILD) return process.env.BENCH_MODES_BASE_BUILD;
  const dir = process.env.BENCH_MODES_BASE_DIR || join(process.env.TMPDIR || "/tmp", `sync-governor-base-${baseCommit()}`);
  return join(dir, "build");
}

/** The previous build (configuration e), when BENCH_MODES_PREV_COMMIT names one. */
export function prevBuild() {
  const commit = process.env.BENCH_MODES_PREV_COMMIT;
  if (!commit) return null;
  const dir = process.env.BENCH_MODES_PREV_DIR || join(process.env.TMPDIR || "/tmp", `sync-governor-base-${commit}`);
  return { commit, build: join(dir, "build"), label: process.env.BENCH_MODES_PREV_LABEL || "the previous build" };
}

export function params() {
  const concurrencies = list("BENCH_MODES_CONCURRENCY", [1, 8]);
  return {
    concurrencies,
    warmup: env("BENCH_MODES_WARMUP", 100), // reads per target; creates: a tenth
    rounds: env("BENCH_MODES_ROUNDS", 12),
    perRound: env("BENCH_MODES_PER_ROUND", 120), // reads per target per round
    createsPerRound: env("BENCH_MODES_CREATES_PER_ROUND", 16), // 0 = reads only
    timeoutS: env("BENCH_MODES_TIMEOUT_S", 150), // per concurrency
    bootstrap: env("BENCH_MODES_BOOTSTRAP", 400),
    path: "/v2/generations?limit=1",
    windowMs: 1000,
    baseCommit: baseCommit(),
    baseBuild: baseBuild(),
    prev: prevBuild(),
  };
}

/** Sends `count` requests made by `make(i)` (→ { url, init, after? }), `concurrency` at a time. */
async function burst(make, count, concurrency, deadline) {
  const lat = [];
  let errors = 0;
  const statuses = {};
  const t0 = now();
  await pool(
    count,
    concurrency,
    async (i) => {
      const m = make(i);
      const r = await req(m.url, m.init);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status === m.ok) lat.push(r.ms);
      else errors++;
      if (m.after) await m.after(r);
    },
    deadline,
  );
  return { lat, errors, statuses, wallMs: now() - t0 };
}

/** Percentile-of-pooled-samples ratio X/A with a 95 % interval from resampling rounds (paired). */
export function roundBootstrap(xRounds, aRounds, iterations, p = 50) {
  const R = Math.min(xRounds.length, aRounds.length);
  const point = pct(xRounds.flat(), p) / pct(aRounds.flat(), p);
  if (R < 2 || iterations < 1) return { r: point, lo: NaN, hi: NaN };
  let seed = 0x9e3779b9; // deterministic (xorshift32)
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const ratios = [];
  for (let k = 0; k < iterations; k++) {
    const xs = [];
    const as = [];
    for (let j = 0; j < R; j++) {
      const i = Math.floor(rnd() * R);
      xs.push(...xRounds[i]);
      as.push(...aRounds[i]);
    }
    ratios.push(pct(xs, p) / pct(as, p));
  }
  return { r: point, lo: pct(ratios, 2.5), hi: pct(ratios, 97.5) };
}

async function status(url, key) {
  const r = await req(`${url}/governor/v1/status`, { headers: { "x-api-key": key } });
  const s = r.json ?? {};
  return {
    httpStatus: r.status,
    mode: s.mode ?? null,
    admitted: s.counters?.admitted ?? null,
    upstream: s.counters?.upstream ?? null,
    inUse: s.concurrency?.inUse ?? s.concurrency?.in_use ?? null,
  };
}

export async function runModes(P = params(), log = () => {}) {
  const t0 = now();
  const sim = await startSim({
    key: [SIM_KEY, CREATE_KEY],
    "window-ms": P.windowMs,
    "generate-per-minute": 1_000_000,
    "other-per-minute": 10_000_000,
    concurrency: 100_000,
    "pending-ms": 0,
    "processing-ms": 1,
  });
  const common = {
    SYNC_API_BASE: sim.url,
    MAX_CONCURRENT_GENERATIONS: 1000,
    GENERATE_PER_MINUTE: 100_000,
    REQUESTS_PER_MINUTE: 100_000,
    RATE_WINDOW_MS: P.windowMs,
    RATE_MARGIN_MS: 0,
  };
  const baseAvailable = existsSync(join(P.baseBuild, "index.js"));
  const configs = [
    { id: "a", name: "(a) enforce, LOG_LEVEL=off (baseline)", vars: { ...common, GOVERNOR_MODE: "enforce", LOG_LEVEL: "off" } },
    { id: "a2", name: "(a′) enforce, LOG_LEVEL=off, a second workerd (A/A control)", vars: { ...common, GOVERNOR_MODE: "enforce", LOG_LEVEL: "off" } },
    { id: "b", name: "(b) enforce, LOG_LEVEL=info (decision logs)", vars: { ...common, GOVERNOR_MODE: "enforce", LOG_LEVEL: "info" } },
    { id: "c", name: "(c) shadow, LOG_LEVEL=off", vars: { ...common, GOVERNOR_MODE: "shadow", LOG_LEVEL: "off" } },
    ...(baseAvailable
      ? [{ id: "d", name: `(d) release before the operations features (${P.baseCommit})`, vars: common, scriptPath: join(P.baseBuild, "index.js"), base: true }]
      : []),
  ];
  const prevAvailable = P.prev && existsSync(join(P.prev.build, "index.js"));
  if (prevAvailable) {
    configs.push({
      id: "e",
      name: `(e) ${P.prev.label} (${P.prev.commit}), LOG_LEVEL=off`,
      vars: { ...common, GOVERNOR_MODE: "enforce", LOG_LEVEL: "off" },
      scriptPath: join(P.prev.build, "index.js"),
      base: true,
    });
  }
  const notes = [];
  if (P.prev && !prevAvailable) notes.push(`(e) not measured: no build at ${P.prev.build} (run \`bash scripts/build-base.sh ${P.prev.commit}\`)`);
  if (!baseAvailable) {
    notes.push(`(d) not measured: no build at ${P.baseBuild} (run \`bash scripts/build-base.sh ${P.baseCommit}\`)`);
    log(`section 7: ${notes[notes.length - 1]}`);
  }
  const started = [];
  try {
    for (const c of configs) {
      // Every configuration's workerd output goes to the same kind of sink:
      // counted (lines, bytes), not kept, never printed.
      c.sink = {
        lines: 0,
        bytes: 0,
        first: [], // the first few lines, for the report (start-up warnings)
        push(l) {
          this.lines++;
          this.bytes += l.length + 1;
          if (this.first.length < 3) this.first.push(l.slice(0, 300));
        },
      };
      log(`section 7: starting ${c.name}`);
      c.gov = await startGovernor(c.vars, { logs: c.sink, scriptPath: c.scriptPath });
      started.push(c.gov);
      c.before = await status(c.gov.url, SIM_KEY);
    }
    const read = (base) => () => ({ url: base + P.path, init: { headers: { "x-api-key": SIM_KEY } }, ok: 200 });
    const createThrough = (base) => () => ({
      url: `${base}/v2/generate`,
      init: { method: "POST", headers: { "x-api-key": CREATE_KEY, "content-type": "application/json" }, body: generateBody() },
      ok: 201,
      // Unmeasured: read the generation until terminal, which frees its permit.
      after: async (r) => {
        if (r.json?.id) await req(`${base}/v2/generate/${r.json.id}?wait=true&timeout=5`, { headers: { "x-api-key": CREATE_KEY } });
      },
    });
    const createDirect = () => ({
      url: `${sim.url}/v2/generate`,
      init: { method: "POST", headers: { "x-api-key": CREATE_KEY, "content-type": "application/json" }, body: generateBody() },
      ok: 201,
    });
    // Probe: what a create answers (Sync answers 201 in the simulator).
    const probe = await req(`${sim.url}/v2/generate`, createDirect().init);
    const createOk = probe.status >= 200 && probe.status < 300 ? probe.status : 201;
    const targets = [{ id: "direct-read", config: "direct", op: "read", name: "simulator direct", make: read(sim.url) }];
    for (const c of configs) targets.push({ id: `${c.id}-read`, config: c.id, op: "read", name: c.name, make: read(c.gov.url) });
    if (P.createsPerRound > 0) {
      const fix = (f) => () => ({ ...f(), ok: createOk });
      targets.push({ id: "direct-create", config: "direct", op: "create", name: "simulator direct", make: fix(createDirect) });
      for (const c of configs) targets.push({ id: `${c.id}-create`, config: c.id, op: "create", name: c.name, make: fix(createThrough(c.gov.url)) });
    }
    const count = (t, warm) => (t.op === "read" ? (warm ? P.warmup : P.perRound) : warm ? Math.max(1, Math.round(P.warmup / 10)) : P.createsPerRound);

    const runs = [];
    for (const conc of P.concurrencies) {
      const tc = now();
      const deadline = tc + P.timeoutS * 1000;
      const res = new Map(targets.map((t) => [t.id, { rounds: [], errors: 0, warmupErrors: 0, warmupOk: 0, statuses: {}, wallMs: 0 }]));
      for (const t of targets) {
        const w = await burst(t.make, count(t, true), conc, deadline);
        res.get(t.id).warmupErrors = w.errors;
        res.get(t.id).warmupOk = w.lat.length;
      }
      log(`section 7: concurrency ${conc}: warm-up done`);
      let rounds = 0;
      for (let round = 0; round < P.rounds && now() < deadline; round++) {
        const per = new Map();
        for (let j = 0; j < targets.length; j++) {
          const t = targets[(round + j) % targets.length];
          const b = await burst(t.make, count(t, false), conc, deadline);
          per.set(t.id, b);
          await sleep(20);
        }
        if (per.size < targets.length) break; // the deadline cut this round short: drop it (rounds stay paired)
        for (const [id, b] of per) {
          const r = res.get(id);
          r.rounds.push(b.lat);
          r.errors += b.errors;
          r.wallMs += b.wallMs;
          for (const [s, n] of Object.entries(b.statuses)) r.statuses[s] = (r.statuses[s] ?? 0) + n;
        }
        rounds++;
        log(`section 7: concurrency ${conc}: round ${round + 1}/${P.rounds} done`);
      }
      const rows = targets.map((t) => {
        const r = res.get(t.id);
        const all = r.rounds.flat();
        return {
          id: t.id,
          config: t.config,
          op: t.op,
          name: t.name,
          n: all.length,
          okWithWarmup: all.length + r.warmupOk,
          errors: r.errors + r.warmupErrors,
          statuses: r.statuses,
          p50: pct(all, 50),
          p90: pct(all, 90),
          p99: pct(all, 99),
          mean: mean(all),
          rps: all.length / (r.wallMs / 1000),
          roundP50: r.rounds.map((l) => pct(l, 50)),
        };
      });
      // Ratios to (a), same operation: p50 and p99 of the pooled samples, the
      // p50's 95 % interval (bootstrap over rounds) and its per-round range.
      for (const row of rows) {
        const a = rows.find((x) => x.config === "a" && x.op === row.op);
        if (!a || row.config === "direct") continue;
        const A = res.get(a.id).rounds;
        const X = res.get(row.id).rounds;
        const b50 = roundBootstrap(X, A, P.bootstrap, 50);
        const per = row.roundP50.map((v, i) => v / a.roundP50[i]).filter(Number.isFinite);
        row.ratio = { p50: b50.r, lo: b50.lo, hi: b50.hi, roundMin: Math.min(...per), roundMax: Math.max(...per), p90: row.p90 / a.p90, p99: row.p99 / a.p99 };
        const direct = rows.find((x) => x.config === "direct" && x.op === row.op);
        row.addedP50 = direct ? row.p50 - direct.p50 : NaN;
      }
      runs.push({ concurrency: conc, rounds, timedOut: rounds < P.rounds, wallS: (now() - tc) / 1000, rows });
    }
    for (const c of configs) c.after = await status(c.gov.url, SIM_KEY);
    for (const c of configs) c.afterCreate = await status(c.gov.url, CREATE_KEY);
    const stats = await sim.stats();
    return {
      params: P,
      notes,
      configs: configs.map((c) => ({
        id: c.id,
        name: c.name,
        vars: Object.fromEntries(Object.entries(c.vars).filter(([k]) => k !== "SYNC_API_BASE")),
        build: c.scriptPath ?? "build/index.js",
        logLines: c.sink.lines,
        logBytes: c.sink.bytes,
        logFirst: c.sink.first,
        // Reads answered 200 over the whole run (warm-ups included), to
        // set against what the account's status counted.
        readsOk: runs.reduce((a, run) => a + (run.rows.find((x) => x.config === c.id && x.op === "read")?.okWithWarmup ?? 0), 0),
        before: c.before,
        after: c.after,
        afterCreate: c.afterCreate,
      })),
      runs,
      upstream429: (stats.totals?.rate_limited?.other ?? 0) + (stats.totals?.rate_limited?.generate ?? 0),
      wallS: (now() - t0) / 1000,
    };
  } finally {
    for (const g of started.reverse()) await g.stop().catch(() => {});
    await sim.stop();
  }
}

// `node bench/modes.mjs [out.json]`: this section alone, its numbers printed.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { writeFileSync } = await import("node:fs");
  const { fmt } = await import("./lib.mjs");
  const r = await runModes(params(), (m) => console.error(`[bench] ${m}`));
  if (process.argv[2]) writeFileSync(process.argv[2], JSON.stringify({ modes: r }, null, 2));
  for (const run of r.runs) {
    console.log(`\nconcurrency ${run.concurrency}: ${run.rounds} rounds${run.timedOut ? " (timed out)" : ""}, ${fmt(run.wallS, 1)} s`);
    for (const row of run.rows) {
      const q = row.ratio;
      console.log(
        `${row.op.padEnd(6)} ${row.id.padEnd(14)} n=${String(row.n).padStart(5)} err=${row.errors} p50=${fmt(row.p50, 2)} p90=${fmt(row.p90, 2)} p99=${fmt(row.p99, 2)} ms` +
          (q ? `  p50/a=${fmt(q.p50, 3)} [${fmt(q.lo, 3)}, ${fmt(q.hi, 3)}] rounds ${fmt(q.roundMin, 2)}–${fmt(q.roundMax, 2)}  added=${fmt(row.addedP50, 2)} ms` : ""),
      );
    }
  }
  for (const c of r.configs) console.log(`${c.id}: log lines ${c.logLines} (${c.logBytes} B), mode ${c.before.mode}, admitted ${JSON.stringify(c.after.admitted)}, permits in use (create account) ${c.afterCreate.inUse}`);
  for (const n of r.notes) console.log(n);
}
