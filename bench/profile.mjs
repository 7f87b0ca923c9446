// Where the governor's admission spends its CPU: a sampling profile of the
// workerd isolate (V8 inspector) while a sequential client sends admitted
// GETs. Build with function names first, then run:
//   WASM_OPT_BIN=$PWD/node_modules/.bin/wasm-opt bash scripts/build.sh
//   node --experimental-websocket bench/profile.mjs [path]
// Prints the self and inclusive shares of the top functions. Loopback only;
// 200 warm-up + 1,500 measured requests. PROFILE_SCRIPT=<build/index.js>
// profiles another build (e.g. scripts/build-base.sh's); PROFILE_LOG_LEVEL
// sets LOG_LEVEL (default: the governor's default, info); PROFILE_TOP the
// number of rows printed (default 30 self, 40 inclusive).
import { Miniflare } from "miniflare";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { startSim, SIM_KEY, ROOT } from "../tests/lib/harness.mjs";
import { req } from "./lib.mjs";
const sim = await startSim({ "generate-per-minute": 1e6, "other-per-minute": 1e6, "window-ms": 1000, concurrency: 1000 });
const scriptPath = process.env.PROFILE_SCRIPT ?? join(ROOT, "build", "index.js");
const top = Number(process.env.PROFILE_TOP ?? 0) || 0;
const logLevel = process.env.PROFILE_LOG_LEVEL ? { LOG_LEVEL: process.env.PROFILE_LOG_LEVEL } : {};
let logLines = 0;
const mf = new Miniflare({ scriptPath, modulesRoot: dirname(scriptPath), modules: true, modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: "2025-09-01", compatibilityFlags: ["enable_request_signal"], host: "127.0.0.1", port: 0, inspectorPort: 9339,
  durableObjects: { ACCOUNTS: { className: "AccountObject", useSQLite: true } },
  bindings: { SYNC_API_BASE: sim.url, GENERATE_PER_MINUTE: "100000", REQUESTS_PER_MINUTE: "100000", RATE_WINDOW_MS: "1000", ...logLevel },
  // workerd's output is counted here, not printed.
  handleRuntimeStdio(stdout, stderr) { for (const s of [stdout, stderr]) createInterface({ input: s }).on("line", () => logLines++); } });
const url = (await mf.ready).toString().replace(/\/$/, "");
const path = process.argv[2] ?? "/v2/generations?limit=1";
for (let i = 0; i < 200; i++) await req(url + path, { headers: { "x-api-key": SIM_KEY } });
const targets = await (await fetch("http://127.0.0.1:9339/json")).json();
console.error(targets.map((t) => t.webSocketDebuggerUrl));
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener("open", r));
let id = 0; const pending = new Map();
ws.addEventListener("message", (e) => { const m = JSON.parse(e.data); if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); } });
const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
await send("Profiler.enable"); await send("Profiler.setSamplingInterval", { interval: 50 }); await send("Profiler.start");
const t0 = performance.now();
for (let i = 0; i < 1500; i++) await req(url + path, { headers: { "x-api-key": SIM_KEY } });
console.error("ms/req", ((performance.now() - t0) / 1500).toFixed(3), "workerd output lines", logLines);
const { result } = await send("Profiler.stop");
const prof = result.profile;
const self = new Map(); const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const total = prof.samples.length;
const counts = new Map(); for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
for (const n of prof.nodes) { const k = n.callFrame.functionName || `(${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber})`; self.set(k, (self.get(k) ?? 0) + (counts.get(n.id) ?? 0)); }
// inclusive
const parent = new Map(); for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const incl = new Map();
for (const [sid, c] of counts) { const seen = new Set(); let x = sid; while (x !== undefined) { const n = byId.get(x); const k = n.callFrame.functionName || "(anon)"; if (!seen.has(k)) { incl.set(k, (incl.get(k) ?? 0) + c); seen.add(k); } x = parent.get(x); } }
console.log("total samples", total);
console.log("--- self top 30");
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top || 30)) console.log((100 * v / total).toFixed(1).padStart(5), k.slice(0, 110));
console.log("--- inclusive top 40");
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top || 40)) console.log((100 * v / total).toFixed(1).padStart(5), k.slice(0, 110));
ws.close(); await mf.dispose(); await sim.stop();
