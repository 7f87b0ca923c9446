// A quick interleaved A/B of governor builds (and variants) on one route:
// every target in every round, in rotating order, so that the machine's
// other load hits all of them alike. For iterating on latency; the report's
// numbers come from scripts/bench.sh (section 2).
//   node bench/ab.mjs [path] name=<build>/index.js[:flag[,flag...]] ...
// Flags: `router` (Miniflare's static-assets router in front, public/ as
// assets, as builds before the files were compiled in were deployed),
// `workerfirst` (the same router, the Worker invoked ahead of the assets:
// wrangler's run_worker_first), `noassets` (no router: the default), and
// VAR=value (a var for that target, e.g. LOG_LEVEL=off).
// Default path /v2/generations?limit=1; default target: this worktree's build/. AB_ROUNDS (20),
// AB_PER_ROUND (50), AB_CONCURRENCY (1), AB_WARMUP (100). Prints p50, p90,
// p99 and the per-round p50 range per target, and the load average.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startSim, startGovernor, SIM_KEY, ROOT } from "../tests/lib/harness.mjs";
import { pct, pool, req, sleep } from "./lib.mjs";

const num = (k, d) => Number(process.env[k] ?? d);
const args = process.argv.slice(2);
const path = args[0]?.startsWith("/") ? args.shift() : "/v2/generations?limit=1";
const specs = (args.length ? args : [`build=${join(ROOT, "build", "index.js")}`]).map((a) => {
  const eq = a.indexOf("=");
  const [name, rest] = [a.slice(0, eq), a.slice(eq + 1)];
  const [script, flagList = ""] = rest.split(":");
  const flags = flagList.split(",").filter(Boolean);
  const vars = Object.fromEntries(flags.filter((f) => f.includes("=")).map((f) => f.split("=")));
  const flag = flags.find((f) => !f.includes("="));
  return { name, script, flag, vars };
});
const [rounds, perRound, c, warmup] = [num("AB_ROUNDS", 20), num("AB_PER_ROUND", 50), num("AB_CONCURRENCY", 1), num("AB_WARMUP", 100)];
const loadavg = () => String(readFileSync("/proc/loadavg")).split(" ").slice(0, 3).join(" ");

const variant = (flag) =>
  flag === "router"
    ? { assets: { directory: join(ROOT, "public"), routerConfig: { has_user_worker: true } } }
    : flag === "workerfirst"
      ? { assets: { directory: join(ROOT, "public"), routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true } } }
      : { assets: undefined };
const sim = await startSim({ "window-ms": 1000, "generate-per-minute": 1_000_000, "other-per-minute": 10_000_000, "pending-ms": 10, "processing-ms": 10 });
const vars = { SYNC_API_BASE: sim.url, MAX_CONCURRENT_GENERATIONS: 100, GENERATE_PER_MINUTE: 100_000, REQUESTS_PER_MINUTE: 100_000, RATE_WINDOW_MS: 1000, RATE_MARGIN_MS: 0 };
const targets = [];
const sink = { push() {} };
try {
  for (const s of specs) {
    // Workerd's output (decision log lines) is counted here, not printed, for every target alike.
    const gov = await startGovernor({ ...vars, ...s.vars }, { scriptPath: s.script, workerOptions: variant(s.flag), logs: sink });
    targets.push({ ...s, gov, lat: [], roundP50: [], errors: 0 });
  }
  const headers = { "x-api-key": SIM_KEY };
  const burst = async (t, n) => {
    const lat = [];
    await pool(n, c, async () => {
      const r = await req(t.gov.url + path, { headers });
      if (r.status === 200) lat.push(r.ms);
      else t.errors++;
    }, performance.timeOrigin + performance.now() + 120_000);
    return lat;
  };
  for (const t of targets) await burst(t, warmup);
  const loadStart = loadavg();
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < targets.length; j++) {
      const t = targets[(r + j) % targets.length];
      const lat = await burst(t, perRound);
      t.lat.push(...lat);
      t.roundP50.push(pct(lat, 50));
      await sleep(10);
    }
  }
  console.log(`path ${path}, c=${c}, ${rounds} rounds × ${perRound}; load average ${loadStart} → ${loadavg()}`);
  for (const t of targets) {
    const f = (v) => v.toFixed(2).padStart(7);
    console.log(`${t.name.padEnd(28)} p50 ${f(pct(t.lat, 50))} p90 ${f(pct(t.lat, 90))} p99 ${f(pct(t.lat, 99))}  round p50 ${f(Math.min(...t.roundP50))}–${f(Math.max(...t.roundP50))}  n ${t.lat.length} errors ${t.errors}`);
  }
} finally {
  for (const t of targets) await t.gov.stop();
  await sim.stop();
}
