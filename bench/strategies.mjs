// Section 1: the seed's strategy (client-side exponential backoff with full
// jitter, straight at Sync) against the governor (honouring its
// Retry-After) and the governor's queue (`Prefer: respond-async`).
//
// W clients each run J generations one after another: create, then poll
// GET /v2/generate/{id} (Sync's long-poll, `?wait=true&timeout=5`) until a
// terminal status, then the next. Every mode gets a fresh simulator (and a
// fresh governor), so /_sim/stats counts only that mode's traffic.
// Modes (BENCH_MODES picks some): backoff, governor, queue (a queued job's
// ticket is polled until it ends), queue-genpoll (the ticket is polled only
// until it names its generation, which is then long-polled through the
// governor, as a Sync SDK would).
import { startSim, startGovernor, generateBody, SIM_KEY } from "../tests/lib/harness.mjs";
import { sleep, pct, mean, jain, req, retryHint, fullJitter } from "./lib.mjs";

const TERMINAL = new Set(["COMPLETED", "FAILED", "REJECTED", "CANCELED", "CANCELLED", "TIMED_OUT"]);
const isTerminal = (s) => typeof s === "string" && TERMINAL.has(s.toUpperCase());
const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : Number(process.env[k]));

export function params() {
  return {
    clients: env("BENCH_CLIENTS", 20),
    jobsPerClient: env("BENCH_JOBS", 10),
    cap: env("BENCH_CAP", 3),
    pendingMs: env("BENCH_PENDING_MS", 50),
    processingMs: env("BENCH_PROCESSING_MS", 400),
    // Sync's limits with the minute scaled to one second (×60), like the
    // generation durations (30 s → 0.45 s is ×67).
    windowMs: env("BENCH_WINDOW_MS", 1000),
    generateLimit: env("BENCH_GENERATE_LIMIT", 60),
    otherLimit: env("BENCH_OTHER_LIMIT", 600),
    marginMs: env("BENCH_MARGIN_MS", 20),
    reconcileMinMs: env("BENCH_RECONCILE_MIN_MS", 250),
    reconcileMaxMs: env("BENCH_RECONCILE_MAX_MS", 5000),
    backoffBaseMs: env("BENCH_BACKOFF_BASE_MS", 100),
    backoffCapMs: env("BENCH_BACKOFF_CAP_MS", 2000),
    longPollS: env("BENCH_LONGPOLL_S", 5),
    ticketPollMs: env("BENCH_TICKET_POLL_MS", 100),
    modeTimeoutS: env("BENCH_MODE_TIMEOUT_S", 150),
    maxAttemptsPerJob: 2000,
    sampleMs: 20,
  };
}

function simArgs(P) {
  return {
    concurrency: P.cap,
    "pending-ms": P.pendingMs,
    "processing-ms": P.processingMs,
    "window-ms": P.windowMs,
    "generate-per-minute": P.generateLimit,
    "other-per-minute": P.otherLimit,
    "webhook-secret": WEBHOOK_SECRET,
  };
}

export const WEBHOOK_SECRET = "whsec_bench_secret_0123456789";

function govVars(simUrl, P) {
  return {
    SYNC_API_BASE: simUrl,
    // The lifecycle as in production: Sync's webhook frees the permit the
    // moment a generation ends (and teaches its duration); reconciliation
    // (GET /v2/generations) backs it up, at Sync's 15 s … 300 s scaled ×1/60.
    GOVERNOR_WEBHOOK_KEY: "bench-governor-webhook-key-0123456789",
    SYNC_WEBHOOK_SECRET: WEBHOOK_SECRET,
    RECONCILE_MIN_MS: P.reconcileMinMs,
    RECONCILE_MAX_MS: P.reconcileMaxMs,
    MAX_CONCURRENT_GENERATIONS: P.cap,
    GENERATE_PER_MINUTE: P.generateLimit,
    REQUESTS_PER_MINUTE: P.otherLimit,
    RATE_WINDOW_MS: P.windowMs,
    RATE_MARGIN_MS: P.marginMs,
  };
}

const json = { "x-api-key": SIM_KEY, "content-type": "application/json" };
const auth = { "x-api-key": SIM_KEY };

/** The generation id a queue ticket points at, whatever the field is called. */
function ticketGeneration(t) {
  if (!t || typeof t !== "object") return null;
  return (
    t.generationId ?? t.generation_id ?? t.syncGenerationId ?? t.syncId ?? t.generation?.id ??
    (typeof t.generation === "string" ? t.generation : null) ?? null
  );
}

/**
 * Poll one generation (long-poll) until terminal, through `base`. 429s are
 * waited out: the governor's hint when it gives one, else backoff.
 */
async function pollToEnd(base, id, P, deadline, job) {
  let strikes = 0;
  for (let k = 0; k < P.maxAttemptsPerJob && Date.now() < deadline; k++) {
    const r = await req(`${base}/v2/generate/${id}?wait=true&timeout=${P.longPollS}`, { headers: auth, timeoutMs: (P.longPollS + 10) * 1000 });
    job.polls++;
    if (r.status >= 200 && r.status < 300) {
      if (isTerminal(r.json?.status)) return r.json.status;
      continue;
    }
    if (r.status === 429) {
      job.pollRejects++;
      const hint = retryHint(r);
      await sleep(hint ? hint.ms : fullJitter(strikes++, P.backoffBaseMs, P.backoffCapMs));
      continue;
    }
    job.errors++;
    await sleep(50);
  }
  return null;
}

/** Create one generation in `mode`; resolves the generation id (or a terminal ticket). */
async function createJob(mode, base, ci, P, deadline, job) {
  const headers = mode.startsWith("queue") ? { ...json, prefer: "respond-async", "x-governor-client": `client-${ci}` } : json;
  let strikes = 0;
  for (let a = 0; a < P.maxAttemptsPerJob && Date.now() < deadline; a++) {
    job.attempts++;
    const r = await req(`${base}/v2/generate`, { method: "POST", headers, body: generateBody() });
    if (r.status >= 200 && r.status < 300 && r.status !== 202) {
      job.created = Date.now();
      job.createdAt = Date.parse(r.json?.createdAt) || job.created;
      return { id: r.json?.id };
    }
    if (r.status === 202 && mode.startsWith("queue")) {
      job.queued = true;
      return await followTicket(base, r, P, deadline, job, mode === "queue");
    }
    if (r.status === 429) {
      const hint = mode === "backoff" ? null : retryHint(r);
      if (hint) {
        job.govRejects++;
        job.hintSources.add(hint.source);
        job.hints.push(hint.ms);
        await sleep(hint.ms);
      } else {
        job.rawRejects++;
        await sleep(fullJitter(strikes++, P.backoffBaseMs, P.backoffCapMs));
      }
      continue;
    }
    job.errors++;
    await sleep(fullJitter(strikes++, P.backoffBaseMs, P.backoffCapMs));
  }
  return null;
}

/**
 * Queue mode: poll the ticket until it ends (`toEnd`), or only until it
 * names its generation (then the caller long-polls the generation).
 */
async function followTicket(base, r, P, deadline, job, toEnd = false) {
  const t = r.json ?? {};
  const loc = r.headers.get("location") ?? `/governor/v1/queue/${t.id}`;
  const url = new URL(loc, base + "/").toString();
  let ticket = t;
  for (let k = 0; k < 100_000 && Date.now() < deadline; k++) {
    const gen = ticketGeneration(ticket);
    if (gen && job.created === null) job.created = Date.now();
    if (isTerminal(ticket.status)) return { id: gen, terminal: ticket.status };
    if (gen && !toEnd) return { id: gen };
    await sleep(P.ticketPollMs);
    const p = await req(url, { headers: auth });
    job.ticketPolls++;
    if (p.status >= 200 && p.status < 300 && p.json) ticket = p.json;
  }
  return null;
}

export async function runClient(mode, base, sim, ci, P, t0, deadline) {
  const jobs = [];
  for (let j = 0; j < P.jobsPerClient && Date.now() < deadline; j++) {
    const job = {
      client: ci, firstAttempt: Date.now(), created: null, createdAt: null, end: null, status: null,
      attempts: 0, govRejects: 0, rawRejects: 0, pollRejects: 0, polls: 0, ticketPolls: 0, errors: 0,
      queued: false, hintSources: new Set(), hints: [],
    };
    jobs.push(job);
    const made = await createJob(mode, base, ci, P, deadline, job);
    if (!made) break;
    if (made.id && job.createdAt === null) {
      // Queue mode: the generation's own start time, from the simulator.
      const g = await req(`${sim.url}/_sim/generations/${made.id}`);
      job.createdAt = Date.parse(g.json?.generation?.createdAt) || job.created;
    }
    job.status = made.terminal ?? (made.id ? await pollToEnd(base, made.id, P, deadline, job) : null);
    if (!job.status) break;
    job.end = Date.now();
  }
  return { client: ci, jobs, finish: Math.max(t0, ...jobs.map((j) => j.end ?? 0)) };
}

/** Time-weighted mean of the simulator's active generations while `running()`. */
async function sampleActive(sim, P, running) {
  let area = 0;
  let last = Date.now();
  let lastActive = 0;
  let samples = 0;
  let peak = 0;
  while (running() && samples < 100_000) {
    await sleep(P.sampleMs);
    const s = await req(`${sim.url}/_sim/stats`);
    const t = Date.now();
    const active = s.json?.totals?.active ?? lastActive;
    area += lastActive * (t - last);
    last = t;
    lastActive = active;
    peak = Math.max(peak, active);
    samples++;
  }
  area += lastActive * (Date.now() - last);
  return { area, samples, peak };
}

/**
 * Warm the governor: `cap` generations end to end, so the account has
 * observed durations (its Retry-After for concurrency comes from them; the
 * prior before any observation is 60 s). In queue mode, then probe the
 * queue: cap + 1 concurrent creates with `Prefer: respond-async`; a 202
 * means the queue exists.
 */
export async function warmUp(mode, base, sim, P) {
  const deadline = Date.now() + 30_000;
  const one = async (headers) => {
    const r = await req(`${base}/v2/generate`, { method: "POST", headers, body: generateBody() });
    const job = { polls: 0, pollRejects: 0, errors: 0, ticketPolls: 0 };
    if (r.status === 202) {
      const made = await followTicket(base, r, P, deadline, job);
      if (made?.id) await pollToEnd(base, made.id, P, deadline, job);
    } else if (r.status >= 200 && r.status < 300) {
      await pollToEnd(base, r.json.id, P, deadline, job);
    }
    return r;
  };
  await Promise.all(Array.from({ length: P.cap }, () => one(json)));
  if (!mode.startsWith("queue")) return { queue: null };
  const probe = await Promise.all(
    Array.from({ length: P.cap + 1 }, (_, i) => one({ ...json, prefer: "respond-async", "x-governor-client": `warm-${i}` })),
  );
  return { queue: probe.some((r) => r.status === 202), probeStatuses: probe.map((r) => r.status) };
}

export async function runMode(mode, P = params()) {
  const sim = await startSim(simArgs(P));
  let gov = null;
  try {
    let base = sim.url;
    let warm = null;
    if (mode !== "backoff") {
      gov = await startGovernor(govVars(sim.url, P));
      base = gov.url;
      warm = await warmUp(mode, base, sim, P);
      if (mode.startsWith("queue") && !warm.queue) {
        // The queue does not exist yet (no 202 to the probe).
        return { mode, supported: false, probeStatuses: warm.probeStatuses };
      }
      // Let the warm-up's tokens leave the simulator's window, then count afresh.
      await sleep(P.windowMs + P.marginMs);
      await sim.reset();
    }
    return await runLoad(mode, base, sim, P, warm);
  } finally {
    await gov?.stop();
    await sim.stop();
  }
}

/** The measured run: W clients × J jobs against `base`, counted at `sim`. */
export async function runLoad(mode, base, sim, P, warm = null) {
  const t0 = Date.now();
  const deadline = t0 + P.modeTimeoutS * 1000;
  let running = true;
  const sampler = sampleActive(sim, P, () => running);
  const clients = await Promise.all(
    Array.from({ length: P.clients }, (_, ci) => runClient(mode, base, sim, ci, P, t0, deadline)),
  );
  running = false;
  const tEnd = Math.max(...clients.flatMap((c) => c.jobs.map((j) => j.end ?? 0)));
  const samples = await sampler;
  const stats = await sim.stats();
  return summarise(mode, P, clients, stats, samples, t0, tEnd, deadline, warm);
}

function summarise(mode, P, clients, stats, samples, t0, tEnd, deadline, warm) {
  const jobs = clients.flatMap((c) => c.jobs);
  const done = jobs.filter((j) => j.end !== null);
  const total = P.clients * P.jobsPerClient;
  const T = stats.totals;
  const upstream429 =
    T.rate_limited.generate + T.rate_limited.other + T.rate_limited.upload + T.concurrency_limited + T.injected_429;
  const upstreamRequests = T.requests.generate + T.requests.other + T.requests.upload;
  const makespanMs = tEnd - t0;
  const durationMs = P.pendingMs + P.processingMs;
  const concBoundMs = (total * durationMs) / P.cap;
  const rateBoundMs = (total * P.windowMs) / P.generateLimit;
  const binding = concBoundMs >= rateBoundMs ? "concurrency" : "generate rate";
  const minMs = Math.max(concBoundMs, rateBoundMs);
  const utilisation =
    binding === "concurrency"
      ? samples.area / (P.cap * makespanMs)
      : T.requests.generate / ((P.generateLimit * makespanMs) / P.windowMs);
  const waits = done.filter((j) => j.createdAt !== null).map((j) => j.createdAt - j.firstAttempt);
  // Slot handoffs: generations all last the same, so the k-th to start is
  // the k-th to end, and its slot goes to the (k + cap)-th start.
  const starts = done.map((j) => j.createdAt).filter((t) => t !== null).sort((a, b) => a - b);
  const handoffs = [];
  for (let k = 0; k + P.cap < starts.length; k++) handoffs.push(starts[k + P.cap] - (starts[k] + durationMs));
  const throughput = clients.map((c) => c.jobs.filter((j) => j.end !== null).length / Math.max(1, (c.finish - t0) / 1000));
  const finishes = clients.map((c) => (c.finish - t0) / 1000);
  const sum = (f) => jobs.reduce((a, j) => a + f(j), 0);
  return {
    mode,
    supported: true,
    timedOut: Date.now() >= deadline,
    jobs: total,
    completed: done.length,
    created: T.created,
    simCompleted: T.completed,
    upstream429,
    upstream429Detail: {
      rate_generate: T.rate_limited.generate,
      rate_other: T.rate_limited.other,
      concurrency: T.concurrency_limited,
      injected: T.injected_429,
    },
    upstreamRequests,
    upstreamGenerate: T.requests.generate,
    upstreamOther: T.requests.other,
    requestsPerJob: upstreamRequests / Math.max(1, done.length),
    clientRequestsPerJob: (sum((j) => j.attempts + j.polls + j.ticketPolls)) / Math.max(1, done.length),
    governorRejects: sum((j) => j.govRejects + j.pollRejects),
    rawRejects: sum((j) => j.rawRejects),
    queued: jobs.filter((j) => j.queued).length,
    hintSources: [...new Set(jobs.flatMap((j) => [...j.hintSources]))],
    hintP50Ms: pct(jobs.flatMap((j) => j.hints), 50),
    hintP95Ms: pct(jobs.flatMap((j) => j.hints), 95),
    hintMaxMs: Math.max(0, ...jobs.flatMap((j) => j.hints)),
    hintsOver1s: jobs.flatMap((j) => j.hints).filter((h) => h >= 1000).length,
    errors: sum((j) => j.errors),
    peakActive: T.peak_concurrency,
    makespanS: makespanMs / 1000,
    minS: minMs / 1000,
    binding,
    ratio: makespanMs / minMs,
    utilisation,
    waitP50S: pct(waits, 50) / 1000,
    waitP95S: pct(waits, 95) / 1000,
    waitMeanS: mean(waits) / 1000,
    jain: jain(throughput),
    handoffP50Ms: pct(handoffs, 50),
    handoffP95Ms: pct(handoffs, 95),
    handoffMaxMs: handoffs.length ? Math.max(...handoffs) : NaN,
    handoffMeanMs: mean(handoffs),
    clientFinishMinS: Math.min(...finishes),
    clientFinishMaxS: Math.max(...finishes),
    samples: samples.samples,
    warm,
  };
}

export async function runStrategies(P = params(), log = () => {}) {
  const modes = [];
  const all = ["backoff", "governor", "queue", "queue-genpoll"];
  const wanted = (process.env.BENCH_MODES ?? all.join(",")).split(",").map((m) => m.trim());
  for (const mode of all.filter((m) => wanted.includes(m))) {
    log(`section 1: ${mode} (${P.clients} clients × ${P.jobsPerClient} jobs, cap ${P.cap})`);
    const t = Date.now();
    const r = await runMode(mode, P);
    r.wallS = (Date.now() - t) / 1000;
    log(`  ${mode}: ${r.supported ? `makespan ${r.makespanS.toFixed(1)} s, upstream 429s ${r.upstream429}` : "queue not implemented yet"}`);
    modes.push(r);
  }
  return { params: P, modes };
}
