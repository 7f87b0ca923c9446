// Section 2: what the governor costs per admitted request. Side by side in
// one run, against one simulator with limits set out of reach:
//   - the simulator directly;
//   - a bare pass-through Worker (bench/passthrough.mjs) in workerd;
//   - the JS peer (bench/peer.mjs): a Worker and a GCRA Durable Object
//     limiter over RPC that persists one number per admission, then forwards
//     like the pass-through Worker (issue 9, item 4);
//   - the governor (admission = one Durable Object call);
//   - the governor on an account whose list contains a terminal generation
//     (admission + an Observe call to release permits it may hold);
//   - with BENCH_OVERHEAD_BASE_SCRIPT=<build>/index.js: another build of the
//     governor (e.g. main before a change), same vars, same rounds (an A/B);
//   - the floor of a Rust Worker (bench/floor, built by scripts/build-floor.sh;
//     skipped when not built): a trivial web_sys Worker answering itself, and
//     calling a no-op Rust Durable Object over RPC and over fetch;
//   - a breakdown of where the time goes: the JS Worker answering itself, the
//     governor's health route (the wasm Worker alone), a no-op JS object
//     over RPC and over fetch, the JS peer without its storage write and with
//     a write the reply does not wait for (allowUnconfirmed) and with its
//     SQLite files on tmpfs (the write without the disk), and the
//     governor's status route (one read-only Durable Object call).
// For each concurrency (default 1 and 8): a warm-up per target, then
// interleaved rounds in a rotating order, so that drift (CPU frequency, GC)
// spreads evenly. Every loop is bounded in count and time; loopback only.
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { startSim, startGovernor, generateBody, SIM_KEY, ROOT } from "../tests/lib/harness.mjs";
import { now, sleep, pct, mean, req, pool, startPassthrough, startPeer, startFloor } from "./lib.mjs";

const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : Number(process.env[k]));
const list = (k, d) =>
  (process.env[k] === undefined || process.env[k] === "" ? d : process.env[k].split(",").map(Number)).filter((n) => Number.isInteger(n) && n > 0);
const KEY_B = "sk-sim-bench-b";

function shmWritable() {
  try {
    accessSync("/dev/shm", constants.W_OK);
    return !process.env.TMPDIR?.startsWith("/dev/shm"); // else it would measure nothing
  } catch {
    return false;
  }
}

export function params() {
  const concurrencies = list("BENCH_OVERHEAD_CONCURRENCY", [1, 8]);
  return {
    concurrencies,
    concurrency: Math.max(...concurrencies), // the run reported in `rows`
    warmup: env("BENCH_OVERHEAD_WARMUP", 200),
    // Many short rounds: finer interleaving, so drift and other load on the
    // machine spread evenly over the targets.
    rounds: env("BENCH_OVERHEAD_ROUNDS", 10),
    perRound: env("BENCH_OVERHEAD_PER_ROUND", 150),
    path: "/v2/generations?limit=1",
    windowMs: 1000,
    timeoutS: env("BENCH_OVERHEAD_TIMEOUT_S", 180), // per concurrency
    baseScript: process.env.BENCH_OVERHEAD_BASE_SCRIPT || null,
    baseName: process.env.BENCH_OVERHEAD_BASE_NAME || "governor, previous build",
    // BENCH_OVERHEAD_BASE_ROUTER=1: the previous build behind Miniflare's
    // static-assets router (public/ as assets), as builds with [assets] ran.
    baseRouter: process.env.BENCH_OVERHEAD_BASE_ROUTER === "1",
  };
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

export async function runOverhead(P = params(), log = () => {}) {
  const sim = await startSim({
    key: [SIM_KEY, KEY_B],
    "window-ms": P.windowMs,
    "generate-per-minute": 1_000_000,
    "other-per-minute": 10_000_000,
    "pending-ms": 10,
    "processing-ms": 10,
  });
  let gov, govBase, pass, peer, peerShm, floor;
  const extra = [];
  try {
    const vars = {
      SYNC_API_BASE: sim.url,
      MAX_CONCURRENT_GENERATIONS: 100,
      GENERATE_PER_MINUTE: 100_000,
      REQUESTS_PER_MINUTE: 100_000,
      RATE_WINDOW_MS: P.windowMs,
      RATE_MARGIN_MS: 0,
    };
    // Workerd's output (the governor's decision log lines, one per admission
    // at the default LOG_LEVEL=info) is read by a counting sink in this
    // process, as in section 7, rather than printed.
    const logs = { lines: 0, push() { this.lines++; } };
    gov = await startGovernor(vars, { logs });
    // The same build with LOG_LEVEL=off: what the decision log line costs.
    const govQuiet = await startGovernor({ ...vars, LOG_LEVEL: "off" }, { logs });
    extra.push(govQuiet);
    const router = { assets: { directory: join(ROOT, "public"), routerConfig: { has_user_worker: true } } };
    if (P.baseScript) govBase = await startGovernor(vars, { scriptPath: P.baseScript, logs, ...(P.baseRouter ? { workerOptions: router } : {}) });
    pass = await startPassthrough(sim.url);
    floor = await startFloor();
    peer = await startPeer(sim.url, { limit: 100_000, periodMs: P.windowMs });
    // The same peer with its SQLite files on tmpfs, when there is one: the
    // write without the disk (everything else here persists to TMPDIR).
    if (shmWritable()) peerShm = await startPeer(sim.url, { limit: 100_000, periodMs: P.windowMs, persistRoot: "/dev/shm" });
    // Account B owns one finished generation, so its list shows a terminal status.
    const made = await req(`${sim.url}/v2/generate`, {
      method: "POST",
      headers: { "x-api-key": KEY_B, "content-type": "application/json" },
      body: generateBody(),
    });
    await req(`${sim.url}/v2/generate/${made.json?.id}?wait=true&timeout=5`, { headers: { "x-api-key": KEY_B } });
    const k = { "x-api-key": SIM_KEY };
    // `group`: main = the latency table; breakdown = where the time goes.
    const targets = [
      { id: "direct", group: "main", name: "simulator direct", url: sim.url + P.path, headers: k },
      { id: "pass", group: "main", name: "pass-through Worker", url: pass.url + P.path, headers: k },
      { id: "peer", group: "main", name: "JS peer (GCRA Durable Object over RPC, storage.put per admission)", url: peer.url + P.path, headers: k },
      { id: "gov", group: "main", name: "governor", url: gov.url + P.path, headers: k },
      ...(govBase ? [{ id: "gov-base", group: "main", extra: true, name: P.baseName, url: govBase.url + P.path, headers: k }] : []),
      { id: "gov-observe", group: "main", extra: true, name: "governor, list shows a terminal generation (admit + observe)", url: gov.url + P.path, headers: { "x-api-key": KEY_B } },
      // Breakdown: no upstream unless said.
      { id: "js-direct", group: "breakdown", extra: true, name: "JS Worker answers itself (no object, no upstream)", url: peer.url + "/_peer/direct", headers: k },
      { id: "gov-health", group: "breakdown", extra: true, name: "diagnostic: governor /governor/v1/health (Worker only)", url: gov.url + "/governor/v1/health", headers: k },
      { id: "noop-rpc", group: "breakdown", extra: true, name: "JS Worker → no-op Durable Object over RPC", url: peer.url + "/_peer/noop-rpc", headers: k },
      { id: "noop-fetch", group: "breakdown", extra: true, name: "JS Worker → no-op Durable Object over fetch", url: peer.url + "/_peer/noop-fetch", headers: k },
      ...(floor
        ? [
            { id: "rust-direct", group: "breakdown", extra: true, name: "Rust floor: a trivial web_sys Worker answers itself", url: floor.url + "/floor/direct", headers: k },
            { id: "rust-converted", group: "breakdown", extra: true, name: "Rust floor through the worker crate's Request/Response (eager conversion of method, URL, headers, cf)", url: floor.url + "/floor/converted", headers: k },
            { id: "rust-rpc", group: "breakdown", extra: true, name: "Rust floor: web_sys Worker → no-op Rust Durable Object over RPC (string in, string out)", url: floor.url + "/floor/rpc", headers: k },
            { id: "rust-fetch", group: "breakdown", extra: true, name: "Rust floor: web_sys Worker → no-op Rust Durable Object over fetch", url: floor.url + "/floor/fetch", headers: k },
          ]
        : []),
      { id: "peer-nowrite", group: "breakdown", extra: true, name: "JS peer without the storage write (+ upstream)", url: peer.url + P.path, headers: { ...k, "x-peer-variant": "nowrite" } },
      { id: "peer-unconfirmed", group: "breakdown", extra: true, name: "JS peer, put with allowUnconfirmed (the reply does not wait for the write)", url: peer.url + P.path, headers: { ...k, "x-peer-variant": "unconfirmed" } },
      ...(peerShm ? [{ id: "peer-tmpfs", group: "breakdown", extra: true, name: "JS peer with its SQLite files on tmpfs (/dev/shm): the write without the disk", url: peerShm.url + P.path, headers: k }] : []),
      { id: "gov-logoff", group: "breakdown", extra: true, name: "governor with LOG_LEVEL=off (no decision log line)", url: govQuiet.url + P.path, headers: k },
      { id: "gov-status", group: "breakdown", extra: true, name: "diagnostic: governor /governor/v1/status (one object call, no write)", url: gov.url + "/governor/v1/status", headers: k },
    ];
    const runs = [];
    for (const c of P.concurrencies) {
      const t0 = now();
      const deadline = t0 + P.timeoutS * 1000;
      const res = new Map(targets.map((t) => [t.id, { lat: [], errors: 0, wallMs: 0, warmupErrors: 0 }]));
      for (const t of targets) {
        log(`section 2: concurrency ${c}: warm-up ${t.name}`);
        const w = await burst(t.url, t.headers, P.warmup, c, deadline);
        res.get(t.id).warmupErrors = w.errors;
      }
      let rounds = 0;
      for (let round = 0; round < P.rounds && now() < deadline; round++) {
        for (let j = 0; j < targets.length; j++) {
          const t = targets[(round + j) % targets.length];
          const r = res.get(t.id);
          const b = await burst(t.url, t.headers, P.perRound, c, deadline);
          r.lat.push(...b.lat);
          r.errors += b.errors;
          r.wallMs += b.wallMs;
          await sleep(20);
        }
        rounds++;
        log(`section 2: concurrency ${c}: round ${round + 1}/${P.rounds} done`);
      }
      const rows = targets.map((t) => {
        const r = res.get(t.id);
        return {
          id: t.id,
          group: t.group,
          name: t.name,
          extra: Boolean(t.extra),
          n: r.lat.length,
          errors: r.errors + r.warmupErrors,
          p50: pct(r.lat, 50),
          p99: pct(r.lat, 99),
          mean: mean(r.lat),
          rps: r.lat.length / (r.wallMs / 1000),
        };
      });
      runs.push({ concurrency: c, rounds, timedOut: rounds < P.rounds, wallS: (now() - t0) / 1000, rows });
    }
    const stats = await sim.stats();
    const main = runs.find((r) => r.concurrency === P.concurrency) ?? runs[runs.length - 1];
    return { params: P, runs, rows: main?.rows ?? [], upstream429: stats.totals.rate_limited.other, logLines: logs.lines };
  } finally {
    await peerShm?.stop();
    await peer?.stop();
    await floor?.stop();
    await pass?.stop();
    await govBase?.stop();
    for (const g of extra) await g.stop();
    await gov?.stop();
    await sim.stop();
  }
}
