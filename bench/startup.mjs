// Startup time of the built Worker, measured offline with
// `wrangler check startup` (Miniflare/workerd on this machine): wrangler
// bundles the Worker as `wrangler deploy --dry-run` would, starts workerd
// with a profiling entry that imports the Worker's main module (the wasm
// module instantiated, wasm-bindgen's start function run) and answers one
// request, and writes V8's CPU profile of that phase. The figure is the
// profile's span (Profiler.start to Profiler.stop: the import plus one answer
// and the inspector's round trips), an upper bound of the startup CPU time;
// a trivial JS Worker (bench/passthrough.mjs) is measured the same way as the
// measurement's own floor. Each is run RUNS times, alternating; the median is
// the figure.
//   node bench/startup.mjs <wrangler.toml copy> <out.json> [runs]
// The copy must have no [build] (scripts/deploy-config.sh makes one).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const [config, outFile, runsArg] = process.argv.slice(2);
if (!config || !outFile) {
  console.error("usage: node bench/startup.mjs <wrangler.toml copy> <out.json> [runs]");
  process.exit(2);
}
const RUNS = Math.max(1, Math.min(15, Number(runsArg ?? process.env.STARTUP_RUNS ?? 5) || 5));
const work = mkdtempSync(join(tmpdir(), "sync-governor-startup-"));
// Each config as wrangler.toml of a scratch directory of its own, run from
// there (from the repository, wrangler takes about a minute here; with -c
// from elsewhere it may take the project for a Pages project).
const govDir = join(work, "governor");
const jsDir = join(work, "js");
mkdirSync(govDir);
mkdirSync(jsDir);
writeFileSync(join(govDir, "wrangler.toml"), readFileSync(config));
writeFileSync(join(jsDir, "wrangler.toml"), `name = "startup-floor"\nmain = "${join(ROOT, "bench", "passthrough.mjs")}"\ncompatibility_date = "2025-09-01"\n`);

/** One `wrangler check startup`: the profile's span and its non-idle sampled time, in ms. */
function once(dir, tag) {
  const outfile = join(work, `${tag}.cpuprofile`);
  const r = spawnSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["check", "startup", "--outfile", outfile], {
    cwd: dir,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (r.status !== 0) throw new Error(`wrangler check startup failed (${r.status}): ${(r.stderr || r.stdout || "").slice(-800)}`);
  const p = JSON.parse(readFileSync(outfile, "utf8"));
  const idle = new Set(p.nodes.filter((n) => ["(idle)", "(program)", "(garbage collector)"].includes(n.callFrame.functionName)).map((n) => n.id));
  let busyUs = 0;
  p.samples.forEach((s, i) => {
    if (!idle.has(s)) busyUs += p.timeDeltas[i] ?? 0;
  });
  return { spanMs: (p.endTime - p.startTime) / 1000, sampledMs: busyUs / 1000 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
try {
  const gov = [];
  const js = [];
  for (let i = 0; i < RUNS; i++) {
    gov.push(once(govDir, `gov${i}`));
    js.push(once(jsDir, `js${i}`));
  }
  const sum = (rs) => ({ runs: rs, spanMs: median(rs.map((r) => r.spanMs)), maxSpanMs: Math.max(...rs.map((r) => r.spanMs)), sampledMs: median(rs.map((r) => r.sampledMs)) });
  const out = { runs: RUNS, governor: sum(gov), jsFloor: sum(js) };
  writeFileSync(outFile, JSON.stringify(out, null, 2));
  console.log(`governor startup: ${out.governor.spanMs.toFixed(1)} ms (median of ${RUNS}, max ${out.governor.maxSpanMs.toFixed(1)}); trivial JS Worker: ${out.jsFloor.spanMs.toFixed(1)} ms`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
