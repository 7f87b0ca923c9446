// CPU time per request: user + system time (from /proc/<pid>/stat) of each
// target's own workerd process over sequential admitted GETs, rounds
// interleaved. Less sensitive to the machine's other load than latency
// (time waiting for a CPU is not counted), though not immune to it.
//   node bench/cpu.mjs name=<build>/index.js[:VAR=v,VAR=v][@path] ...
// Always measures the pass-through Worker and the JS peer (and its
// /_peer/direct and /_peer/noop-rpc), with CPU_FLOOR=1 the Rust floor too.
// CPU_N (2000) requests per target, CPU_ROUNDS (4). Linux only; run it alone:
// a workerd that another process starts meanwhile would be counted too.
import { readFileSync, readdirSync } from "node:fs";
import { startSim, startGovernor, SIM_KEY } from "../tests/lib/harness.mjs";
import { req, startPassthrough, startPeer } from "./lib.mjs";
const workerds = () => new Set(readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => { try { return readFileSync(`/proc/${p}/comm`, "utf8").trim() === "workerd"; } catch { return false; } }));
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) * 10; }; // ms (CLK_TCK 100)
const started = async (start) => { const before = workerds(); const t = await start(); const pids = [...workerds()].filter((p) => !before.has(p)); return { ...t, pids }; };
const sim = await startSim({ "window-ms": 1000, "generate-per-minute": 1_000_000, "other-per-minute": 10_000_000 });
const vars = { SYNC_API_BASE: sim.url, MAX_CONCURRENT_GENERATIONS: 100, GENERATE_PER_MINUTE: 100_000, REQUESTS_PER_MINUTE: 100_000, RATE_WINDOW_MS: 1000, RATE_MARGIN_MS: 0 };
const sink = { push() {} };
const targets = [];
targets.push({ name: "pass", ...(await started(() => startPassthrough(sim.url))) });
targets.push({ name: "peer", ...(await started(() => startPeer(sim.url, { limit: 100_000, periodMs: 1000 }))) });
for (const a of process.argv.slice(2)) { const [name, rest0] = [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]; const [rest, path] = rest0.split("@"); const [script, v] = rest.split(":"); const extra = v ? Object.fromEntries(v.split(",").map((x) => x.split("="))) : {};
  targets.push({ name, path, ...(await started(() => startGovernor({ ...vars, ...extra }, { scriptPath: script, logs: sink }))) }); }
if (process.env.CPU_FLOOR) { const { startFloor } = await import("./lib.mjs"); const f = await started(() => startFloor()); targets.push({ ...f, name: "rust-direct", path: "/floor/direct" }, { ...f, name: "rust-rpc", path: "/floor/rpc", shared: true }); }
targets.push({ ...targets[1], name: "js-direct", path: "/_peer/direct", shared: true }, { ...targets[1], name: "noop-rpc", path: "/_peer/noop-rpc", shared: true });
const N = Number(process.env.CPU_N ?? 2000), R = Number(process.env.CPU_ROUNDS ?? 4);
for (const t of targets) { t.ms = 0; t.n = 0; for (let i = 0; i < 200; i++) await req(t.url + (t.path ?? "/v2/generations?limit=1"), { headers: { "x-api-key": SIM_KEY } }); }
for (let r = 0; r < R; r++) for (const t of targets) {
  const c0 = t.pids.reduce((s, p) => s + cpu(p), 0);
  for (let i = 0; i < N / R; i++) { const r = await req(t.url + (t.path ?? "/v2/generations?limit=1"), { headers: { "x-api-key": SIM_KEY } }); if (r.status !== 200) t.errors = (t.errors ?? 0) + 1; }
  t.ms += t.pids.reduce((s, p) => s + cpu(p), 0) - c0; t.n += N / R;
}
for (const t of targets) console.log(`${t.name.padEnd(14)} workerd CPU ${(1000 * t.ms / t.n).toFixed(0).padStart(5)} µs/request (pids ${t.pids.join(",")})${t.errors ? ` NOT COMPARABLE: ${t.errors} answers were not 200` : ""}`);
if (targets.some((t) => t.errors)) process.exitCode = 1;
for (const t of targets) if (!t.shared) await t.stop(); await sim.stop();
