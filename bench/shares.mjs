// Section 8: sharing one account among clients (issue 17), side by side in
// one run:
//   A. weighted shares: three clients with weights 1:2:4, each with a
//      backlog, on a cap of 7: shares of completed generations in a window;
//   B. greedy vs light: a greedy client with 200 queued jobs and a light one
//      queueing one job every 2 s: the light client's queue wait;
// each on this build (weighted fair queueing, CLIENT_LIMITS) and on the
// release before it (plain round-robin across clients, weights unknown:
// BENCH_SHARES_BASE_COMMIT, default fc0d7ff, built by scripts/build-base.sh);
//   C. admission latency of an admitted read with CLIENT_LIMITS configured
//      (every field, 50 named clients) vs without, two workerd side by side
//      in interleaved rounds.
// Pass-through mode with X-Governor-Client (the only client naming both
// builds know). Every loop is bounded in count and wall time.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:http";
import { startSim, startGovernor, generateBody, SIM_KEY } from "../tests/lib/harness.mjs";
import { pct, req, sleep, now } from "./lib.mjs";

const env = (k, d) => Number(process.env[k] ?? d);
export const baseCommit = () => process.env.BENCH_SHARES_BASE_COMMIT || "fc0d7ff";
export const baseBuild = () =>
  process.env.BENCH_SHARES_BASE_DIR || join(process.env.TMPDIR || "/tmp", `sync-governor-base-${baseCommit()}`, "build");

export function params() {
  return {
    generationMs: env("BENCH_SHARES_GENERATION_MS", 400),
    windowMs: env("BENCH_SHARES_WINDOW_MS", 12_000),
    lightGenerationMs: env("BENCH_SHARES_LIGHT_GENERATION_MS", 1_500),
    lightJobs: env("BENCH_SHARES_LIGHT_JOBS", 6),
    latencyRounds: env("BENCH_SHARES_LATENCY_ROUNDS", 6),
    latencyPerRound: env("BENCH_SHARES_LATENCY_PER_ROUND", 50),
    baseCommit: baseCommit(),
    baseBuild: baseBuild(),
  };
}

const WEIGHTS = { "h-one": 1, "h-two": 2, "h-four": 4 };
const clientLimits = JSON.stringify({ "*": Object.fromEntries(Object.entries(WEIGHTS).map(([c, w]) => [c, { weight: w }])) });

async function receiver() {
  const got = [];
  const server = createServer((r, res) => {
    const chunks = [];
    r.on("data", (c) => chunks.push(c));
    r.on("end", () => {
      try {
        if (JSON.parse(Buffer.concat(chunks).toString()).status === "COMPLETED") got.push({ client: r.url.split("/")[1], at: Date.now() });
      } catch {}
      res.writeHead(204).end();
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${server.address().port}`, got, close: () => new Promise((ok) => server.close(ok)) };
}

async function world(cap, generationMs, vars, scriptPath) {
  const sim = await startSim({ concurrency: cap, "pending-ms": 20, "processing-ms": generationMs - 20, "generate-per-minute": 100_000, "other-per-minute": 100_000 });
  const gov = await startGovernor(
    {
      SYNC_API_BASE: sim.url,
      MAX_CONCURRENT_GENERATIONS: String(cap),
      GENERATE_PER_MINUTE: "100000",
      REQUESTS_PER_MINUTE: "100000",
      GOVERNOR_WEBHOOK_KEY: "bench-shares-webhook-key-0123456789",
      LOCAL_MODE: "true",
      QUEUE_MAX_DEPTH: "5000",
      LOG_LEVEL: "off",
      ...vars,
    },
    { scriptPath },
  );
  return { sim, gov, stop: async () => (await gov.stop(), await sim.stop()) };
}

const queue = (gov, client, hookUrl, i) =>
  req(`${gov.url}/v2/generate`, {
    method: "POST",
    headers: { "x-api-key": SIM_KEY, "content-type": "application/json", prefer: "respond-async", "x-governor-client": client },
    body: generateBody(hookUrl ? { webhookUrl: `${hookUrl}/${client}/${i}` } : {}),
  });

/** A: shares of completions in a window, with every client backlogged. */
async function weighted(P, scriptPath, vars) {
  const w = await world(7, P.generationMs, vars, scriptPath);
  const hook = await receiver();
  try {
    // The same backlog for every client, enough for each to the window's
    // end at any share (round-robin serves each a third, weights 1:2:4 the
    // heaviest 4/7) even counting what drains while the backlog is queued:
    // a share means nothing once a client has run dry (`left` says).
    const perSecond = (7 * 1000) / P.generationMs;
    const each = Math.ceil((perSecond * (P.windowMs + 6_000)) / 1000) + 60;
    const order = [];
    for (let i = 0; i < each; i++) for (const c of Object.keys(WEIGHTS)) order.push([c, i]);
    // Queued by 8 callers at once, interleaved, so that neither build sees
    // one client's backlog first and the queueing is short beside the window.
    await req(`${w.gov.url}/v2/generations?limit=1`, { headers: { "x-api-key": SIM_KEY } });
    const deadline = Date.now() + 120_000;
    let next = 0;
    const queued = Object.fromEntries(Object.keys(WEIGHTS).map((c) => [c, 0]));
    const caller = async () => {
      while (next < order.length && Date.now() < deadline) {
        const [c, i] = order[next++];
        const r = await queue(w.gov, c, hook.url, i);
        if (r.status === 201 || r.status === 202) queued[c]++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, caller));
    const from = Date.now() + 1_500;
    const to = from + P.windowMs;
    await sleep(to - Date.now() + 300);
    const counts = Object.fromEntries(Object.keys(WEIGHTS).map((c) => [c, hook.got.filter((g) => g.client === c && g.at >= from && g.at < to).length]));
    const sum = Object.values(counts).reduce((a, b) => a + b, 0);
    // Jobs not yet completed at the window's end: a share is only a share
    // while every client still has work (0 here would make it meaningless).
    const left = Object.fromEntries(Object.entries(queued).map(([c, n]) => [c, n - hook.got.filter((g) => g.client === c && g.at < to).length]));
    return { counts, total: sum, left, shares: Object.fromEntries(Object.entries(counts).map(([c, n]) => [c, n / Math.max(1, sum)])) };
  } finally {
    await hook.close();
    await w.stop();
  }
}

/** B: the light client's queue waits behind a greedy one. */
async function greedyLight(P, scriptPath) {
  const w = await world(3, P.lightGenerationMs, {}, scriptPath);
  try {
    for (let i = 0; i < 200; i++) await queue(w.gov, "h-greedy", null, i);
    const waits = [];
    for (let j = 0; j < P.lightJobs; j++) {
      const asked = Date.now();
      const r = await queue(w.gov, "h-light", null, j);
      if (r.status === 202 && r.json?.id) {
        const limit = asked + 10 * P.lightGenerationMs;
        for (;;) {
          const t = await req(`${w.gov.url}/governor/v1/queue/${r.json.id}`, { headers: { "x-api-key": SIM_KEY } });
          if (t.json && t.json.status !== "QUEUED") break;
          if (Date.now() > limit) break;
          await sleep(25);
        }
        waits.push(Date.now() - asked);
      } else waits.push(0);
      await sleep(Math.max(0, asked + 2_000 - Date.now()));
    }
    return { waits, p50: pct(waits, 50), max: Math.max(...waits), generationMs: P.lightGenerationMs };
  } finally {
    await w.stop();
  }
}

/** C: admitted reads, CLIENT_LIMITS configured vs not, interleaved rounds. */
async function latency(P) {
  const many = { "*": { "*": { weight: 1, concurrency: 50, generatePerMinute: 1000, requestsPerMinute: 100000, usdPerDay: 100, usdPerMonth: 1000 } } };
  for (let i = 0; i < 50; i++) many["*"][`h-client${i}`] = { weight: 1 + (i % 5), reserved: 0, requestsPerMinute: 100000 };
  const configs = [
    { name: "without CLIENT_LIMITS", vars: {} },
    { name: "with CLIENT_LIMITS (every field, 50 named clients)", vars: { CLIENT_LIMITS: JSON.stringify(many) } },
  ];
  for (const c of configs) {
    c.w = await world(3, 2_000, c.vars);
    c.ms = [];
  }
  try {
    for (let r = 0; r < P.latencyRounds; r++) {
      for (const c of r % 2 ? [...configs].reverse() : configs) {
        for (let i = 0; i < P.latencyPerRound; i++) {
          const t0 = now();
          const x = await req(`${c.w.gov.url}/v2/generations?limit=1`, { headers: { "x-api-key": SIM_KEY, "x-governor-client": `client${i % 50}` } });
          if (x.status === 200) c.ms.push(now() - t0);
        }
      }
    }
    return configs.map((c) => ({ name: c.name, n: c.ms.length, p50: pct(c.ms, 50), p90: pct(c.ms, 90), p99: pct(c.ms, 99) }));
  } finally {
    for (const c of configs) await c.w.stop();
  }
}

export async function runShares(P = params(), log = () => {}) {
  const base = join(P.baseBuild, "index.js");
  const haveBase = existsSync(base);
  const out = { params: P, notes: [] };
  if (!haveBase) out.notes.push(`round-robin not measured: no build at ${P.baseBuild} (run \`bash scripts/build-base.sh ${P.baseCommit}\`)`);
  log("shares A: weights 1:2:4 on cap 7 (weighted fair)");
  out.weighted = { fair: await weighted(P, undefined, { CLIENT_LIMITS: clientLimits }) };
  if (haveBase) {
    log(`shares A: the same on ${P.baseCommit} (round-robin)`);
    out.weighted.roundRobin = await weighted(P, base, {});
  }
  log("shares B: greedy 200 queued vs light every 2 s (weighted fair)");
  out.greedyLight = { fair: await greedyLight(P) };
  if (haveBase) {
    log(`shares B: the same on ${P.baseCommit} (round-robin)`);
    out.greedyLight.roundRobin = await greedyLight(P, base);
  }
  log("shares C: admission latency with and without CLIENT_LIMITS");
  out.latency = await latency(P);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runShares(params(), (m) => console.error(`[bench] ${m}`));
  console.log(JSON.stringify(r, null, 2));
}
