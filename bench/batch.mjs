// Section 9: the batch lane (issue 18). The same backlog of 600 queued
// jobs (`Prefer: respond-async`) drained by the governor twice, side by
// side in one run, each on a fresh simulator and governor:
//   A. through the batch lane (`X-Governor-Lane: batch`, SYNC_BATCH=on);
//   B. without it (the same jobs, no lane header: one create each).
// Reported: upstream calls (every request the simulator saw, by class),
// calls Sync refused (429s of any kind), and the makespan (first job sent
// to the last ticket terminal) in simulated time.
//
// Simulated time: every time the governor and the simulator know is scaled
// by SCALE (default 60: the rate window of 60 s is 1 s of wall time; a
// generation of 60 s takes 1 s). Both runs use the same scale, plan and
// durations: a cap of 10 concurrent generations, 60 creates and 600 other
// requests per (simulated) minute, 2 concurrent batches; a direct
// generation runs 60 simulated seconds; a batch stays PENDING 60 s and its
// generations then run 60 s each, side by side (Sync's batches bypass the
// generation cap; its target turnaround is 24 h, so the lane's real
// makespan is Sync's to decide: here it is as quick as a direct one).
// Every loop is bounded in count and time.
import { startSim, startGovernor, generateBody, SIM_KEY } from "../tests/lib/harness.mjs";
import { now, sleep, req } from "./lib.mjs";

const env = (k, d) => Number(process.env[k] ?? d);

export function params() {
  return {
    jobs: env("BENCH_BATCH_JOBS", 600),
    scale: env("BENCH_BATCH_SCALE", 60),
    cap: env("BENCH_BATCH_CAP", 10),
    generationS: env("BENCH_BATCH_GENERATION_S", 60),
    batchPendingS: env("BENCH_BATCH_PENDING_S", 60),
    deadlineS: env("BENCH_BATCH_DEADLINE_S", 600),
  };
}

async function world(p) {
  const ms = (simSeconds) => Math.max(1, Math.round((simSeconds * 1000) / p.scale));
  const sim = await startSim({
    concurrency: p.cap,
    "window-ms": ms(60),
    "pending-ms": ms(2),
    "processing-ms": ms(p.generationS - 2),
    "batch-concurrency": 2,
  });
  await sim.configure({ batch_pending_ms: ms(p.batchPendingS), batch_generation_ms: ms(p.generationS), batch_webhook_drop_rate: 0 });
  const gov = await startGovernor({
    SYNC_API_BASE: sim.url,
    RATE_WINDOW_MS: String(ms(60)),
    MAX_CONCURRENT_GENERATIONS: String(p.cap),
    MAX_CONCURRENT_BATCHES: "2",
    SYNC_BATCH: "on",
    SYNC_BATCH_POLL_MS: String(Math.max(100, ms(30))),
    SYNC_BATCH_LINGER_MS: String(ms(300)),
    RECONCILE_MIN_MS: String(Math.max(100, ms(15))),
    RECONCILE_MAX_MS: String(Math.max(100, ms(300))),
    LOCAL_MODE: "true",
    LOG_LEVEL: "off",
  });
  return { sim, gov, ms };
}

const status = async (gov) => (await req(`${gov.url}/governor/v1/status`, { headers: { "x-api-key": SIM_KEY } })).json;

async function drain(p, lane, log) {
  const { sim, gov } = await world(p);
  try {
    // One read Sync answers proves the key (a provisional account's lane work goes direct).
    await req(`${gov.url}/v2/generations?limit=1`, { headers: { "x-api-key": SIM_KEY } });
    const t0 = now();
    const headers = { "x-api-key": SIM_KEY, "content-type": "application/json", prefer: "respond-async" };
    if (lane) headers["x-governor-lane"] = "batch";
    let next = 0;
    const answers = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < p.jobs) {
          const i = next++;
          const body = JSON.stringify(generateBody({ input: [{ type: "video", url: `https://example.com/${i}.mp4` }, { type: "audio", url: "https://example.com/a.wav" }] }));
          const r = await req(`${gov.url}/v2/generate`, { method: "POST", headers, body });
          answers.push(r.status);
        }
      }),
    );
    const queuedAt = now();
    const deadline = t0 + p.deadlineS * 1000;
    let s;
    for (;;) {
      s = await status(gov);
      const lanesIdle = s.lane.waiting === 0 && s.lane.inFlight.length === 0;
      const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()).keys[SIM_KEY];
      if (lanesIdle && s.queue.depth === 0 && s.concurrency.inUse === 0 && stats.active === 0 && stats.batch_active === 0) break;
      if (now() > deadline) throw new Error(`not drained within ${p.deadlineS} s: ${JSON.stringify({ lane: s.lane, depth: s.queue.depth })}`);
      await sleep(50);
    }
    const wallMs = now() - t0;
    const k = (await (await fetch(`${sim.url}/_sim/stats`)).json()).keys[SIM_KEY];
    const refused = k.rate_limited.generate + k.rate_limited.other + k.rate_limited.upload + k.concurrency_limited + k.batch_concurrency_limited + k.injected_429;
    const out = {
      lane,
      accepted: answers.filter((c) => c === 202 || c === 201).length,
      upstreamCalls: k.requests.generate + k.requests.other + k.requests.upload,
      creates: k.requests.generate,
      other: k.requests.other,
      batchCalls: k.batches_created,
      generations: k.created,
      completed: k.completed,
      refusedBySync: refused,
      makespanSimMin: (wallMs * p.scale) / 60_000,
      queueingWallS: (queuedAt - t0) / 1000,
      wallS: wallMs / 1000,
      laneView: s.lane,
    };
    log(`${lane ? "lane" : "direct"}: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await gov.stop();
    await sim.stop();
  }
}

export async function runBatch(p = params(), log = console.error) {
  log(`batch lane bench: ${JSON.stringify(p)}`);
  const withLane = await drain(p, true, log);
  const without = await drain(p, false, log);
  return { params: p, withLane, without };
}

/** The section's Markdown (BENCHMARKS.md section 9), from `runBatch`'s result. */
export function renderBatch(r) {
  const P = r.params;
  const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : "–");
  const row = (name, x) =>
    `| ${name} | ${x.accepted} | ${x.upstreamCalls} | ${x.creates} | ${x.other} | ${x.batchCalls} | ${x.refusedBySync} | ${x.completed} | ${f1(x.makespanSimMin)} | ${f1(x.queueingWallS * P.scale / 60)} |`;
  const a = r.withLane, b = r.without;
  return [
    "## 9. The batch lane: a 600-job backlog through batches vs one create each",
    "",
    `The same backlog of ${P.jobs} queued jobs (\`Prefer: respond-async\`) drained twice, side by side in one run (\`node bench/batch.mjs\`), each on a fresh simulator and governor: ` +
      `through the batch lane (\`X-Governor-Lane: batch\`, \`SYNC_BATCH=on\`) and without it (no header: one create each). ` +
      `Simulated time: every time the governor and the simulator know is scaled by ${P.scale} (60 simulated seconds are ${60 / P.scale} s of wall time). ` +
      `Plan: a cap of ${P.cap} concurrent generations, 60 creates and 600 other requests a minute, 2 concurrent batches; a direct generation runs ${P.generationS} s; ` +
      `a batch stays PENDING ${P.batchPendingS} s, then its generations run ${P.generationS} s each side by side (Sync's batches bypass the generation cap; ` +
      `its target turnaround is 24 h, so the lane's real makespan is Sync's to decide: here a batch is as quick as a direct generation). ` +
      `Upstream calls are every request the simulator saw; refused are its 429s of any kind; the makespan runs from the first job queued to the last generation ended, queueing included.`,
    "",
    "| backlog | accepted (202) | upstream calls | creates | other (batch creates, reads, results, listings) | batch calls | refused by Sync (429) | generations completed | makespan (simulated min) | of which queueing the backlog (simulated min) |",
    "|---|---|---|---|---|---|---|---|---|---|",
    row("through the batch lane", a),
    row("without the lane", b),
    "",
    `Through the lane: ${a.upstreamCalls} upstream calls instead of ${b.upstreamCalls} (${f1(b.upstreamCalls / Math.max(1, a.upstreamCalls))}× fewer), ` +
      `makespan ${f1(a.makespanSimMin)} vs ${f1(b.makespanSimMin)} simulated minutes. Lane status at the end: ` +
      `${a.laneView.batches} batches, ${a.laneView.jobsBatched} jobs batched, ${a.laneView.created} generations made by batches, ${a.laneView.fellBack} fell back, ${a.laneView.callsSaved} calls saved.`,
    "",
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runBatch();
  console.log(renderBatch(r).join("\n"));
}
