// Runs the load benchmarks (sections 1–3 and 6–9) one after another and writes their
// results as JSON: `node bench/run.mjs <out.json>`. A section that fails is
// recorded with its error, so the report still shows the others.
// Sections can be picked with BENCH_SECTIONS=1,2,3,6,7,8.
import { writeFileSync } from "node:fs";
import { runStrategies } from "./strategies.mjs";
import { runOverhead } from "./overhead.mjs";
import { runFlood } from "./flood.mjs";
import { runGrowth } from "./growth.mjs";
import { runModes } from "./modes.mjs";
import { runShares } from "./shares.mjs";
import { runBatch } from "./batch.mjs";

const out = process.argv[2];
if (!out) {
  console.error("usage: node bench/run.mjs <out.json>");
  process.exit(2);
}
const wanted = new Set((process.env.BENCH_SECTIONS ?? "1,2,3,6,7,8,9").split(",").map((s) => s.trim()));
const log = (m) => console.error(`[bench] ${m}`);
const results = {};
const sections = [
  ["1", "strategies", () => runStrategies(undefined, log)],
  ["2", "overhead", () => runOverhead(undefined, log)],
  ["3", "flood", () => runFlood(undefined, log)],
  ["6", "growth", () => runGrowth(undefined, log)],
  ["7", "modes", () => runModes(undefined, log)],
  ["8", "shares", () => runShares(undefined, log)],
  ["9", "batch", () => runBatch(undefined, log)],
];
for (const [n, name, run] of sections) {
  if (!wanted.has(n)) continue;
  const t = Date.now();
  try {
    results[name] = await run();
  } catch (e) {
    log(`section ${n} (${name}) failed: ${e?.stack ?? e}`);
    results[name] = { error: String(e?.message ?? e) };
  }
  results[name].wallS = (Date.now() - t) / 1000;
  writeFileSync(out, JSON.stringify(results, null, 2));
}
writeFileSync(out, JSON.stringify(results, null, 2));
log(`results written to ${out}`);
