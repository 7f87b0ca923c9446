// Waiting instead of failing: the durable, fair generation queue
// (Prefer: respond-async) and held requests (Prefer: wait=N), through the
// real runtime against the simulator.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateBody, SIM_KEY, until, govCall } from "../lib/harness.mjs";
import { setup as start, receiver, status, drained, waitFor } from "../lib/e2e.mjs";

const WEBHOOK_KEY = "governor-webhook-key-for-tests";

const setup = (simFlags = {}, vars = {}) =>
  start({ concurrency: 3, "pending-ms": 20, "processing-ms": 200, "generate-per-minute": 10_000, ...simFlags }, {
    MAX_CONCURRENT_GENERATIONS: "3",
    GENERATE_PER_MINUTE: "10000",
    REQUESTS_PER_MINUTE: "100000",
    GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
    LOCAL_MODE: "true",
    RECONCILE_MIN_MS: "1000",
    ...vars,
  });

const call = govCall;


const jain = (xs) => {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return q === 0 ? 1 : (s * s) / (xs.length * q);
};

test("20 clients × 10 queued jobs, cap 3: all complete once, Sync never refuses, near-minimal makespan, fair shares", async () => {
  const CLIENTS = 20;
  const JOBS = 10;
  const CAP = 3;
  const DURATION = 220; // pending 20 + processing 200
  const { sim, gov } = await setup();
  const hook = await receiver();
  const started = Date.now();
  const tickets = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let j = 0; j < JOBS; j++) {
        const r = await call(gov, "/v2/generate", {
          method: "POST",
          body: generateBody({ webhookUrl: `${hook.url}/c${c}/j${j}` }),
          headers: { prefer: "respond-async", "x-governor-client": `client-${c}` },
        });
        assert.ok(r.status === 201 || r.status === 202, `${r.status} ${r.text}`);
        if (r.status === 202) {
          assert.match(r.headers.get("location"), /^\/governor\/v1\/queue\/tk_/);
          assert.equal(r.json.status, "QUEUED");
          assert.ok(Number.isInteger(r.json.position) && r.json.estimatedStartAt);
          tickets.push(r.json.id);
        }
      }
    }),
  );
  const total = CLIENTS * JOBS;
  await until("all jobs completed", () => hook.got.length >= total, 120_000);
  const makespan = Math.max(...hook.got.map((g) => g.at)) - started;
  // Nothing more is on its way: no relay or submission due.
  await drained(gov);
  // Exactly once: one webhook per job, one generation per job at Sync.
  const paths = hook.got.map((g) => g.path);
  assert.equal(new Set(paths).size, total, "each job completed exactly once");
  assert.equal(paths.length, total);
  const stats = await sim.stats();
  assert.equal(stats.totals.created, total, "Sync created each job once");
  assert.equal(stats.totals.rate_limited.generate, 0);
  assert.equal(stats.totals.concurrency_limited, 0, "Sync never refused for concurrency");
  assert.ok(stats.totals.peak_concurrency <= CAP, `peak ${stats.totals.peak_concurrency}`);
  const minimum = Math.ceil(total / CAP) * DURATION;
  const ratio = makespan / minimum;
  console.log(`queue: makespan ${makespan} ms, theoretical minimum ${minimum} ms, ratio ${ratio.toFixed(3)}`);
  // How close to the minimum is a performance claim: it lives in the queue
  // benchmark (bench/, BENCHMARKS.md), measured alone. Here, on a shared
  // machine, only what no load explains: the cap is used, and no stall of
  // seconds (a missed wake waits for the next reconciliation or more).
  assert.equal(stats.totals.peak_concurrency, CAP, "the queue fills every permit");
  assert.ok(ratio < 3, `makespan ${makespan} ms is ${ratio.toFixed(2)}× the minimum ${minimum} ms`);
  // Fairness: when half the work is done, every client has had its share.
  const byTime = [...hook.got].sort((a, b) => a.at - b.at).slice(0, total / 2);
  const shares = Array.from({ length: CLIENTS }, (_, c) => byTime.filter((g) => g.path.startsWith(`/c${c}/`)).length);
  const index = jain(shares);
  console.log(`queue: per-client completions at half time ${shares.join(",")}, Jain ${index.toFixed(3)}`);
  assert.ok(index >= 0.95, `Jain's index ${index}`);
  // Tickets end in the generation's terminal status, with its id.
  const t = await call(gov, `/governor/v1/queue/${tickets[0]}`);
  assert.equal(t.status, 200);
  assert.equal(t.json.status, "COMPLETED");
  assert.ok(t.json.generationId);
});

test("one client with many jobs does not starve another with one; priority orders within a client", async () => {
  const { gov } = await setup({ concurrency: 1, "processing-ms": 150 }, { MAX_CONCURRENT_GENERATIONS: "1" });
  const hook = await receiver();
  const submit = (client, name, priority) =>
    call(gov, "/v2/generate", {
      method: "POST",
      body: generateBody({ webhookUrl: `${hook.url}/${name}` }),
      headers: { prefer: "respond-async", "x-governor-client": client, ...(priority ? { "x-governor-priority": String(priority) } : {}) },
    });
  // The first runs long enough that every job below is queued before a
  // permit frees (the order is then the queue's, not the submissions').
  const first = await call(gov, "/v2/generate", {
    method: "POST",
    body: generateBody({ webhookUrl: `${hook.url}/bulk-0`, options: { sim_duration_ms: 6_000 } }),
    headers: { prefer: "respond-async", "x-governor-client": "bulk" },
  });
  assert.equal(first.status, 201, "the first goes at once");
  for (let i = 1; i <= 6; i++) assert.equal((await submit("bulk", `bulk-${i}`)).status, 202);
  assert.equal((await submit("bulk", "bulk-urgent", 10)).status, 202);
  assert.equal((await submit("single", "single-0")).status, 202);
  assert.equal(hook.got.length, 0, "all queued while the first still runs");
  await until("first three", () => hook.got.length >= 3, 25_000);
  const order = hook.got.map((g) => g.path.slice(1));
  assert.equal(order[0], "bulk-0");
  assert.ok(order.slice(1, 3).includes("single-0"), `single is served in the first round: ${order}`);
  assert.ok(order.slice(1, 3).includes("bulk-urgent"), `priority first within bulk: ${order}`);
});

test("a full queue answers 429 queue_full; a queued ticket can be canceled, a submitted one cannot", async () => {
  const { gov } = await setup({ concurrency: 1, "processing-ms": 3000 }, { MAX_CONCURRENT_GENERATIONS: "1", QUEUE_MAX_DEPTH: "2" });
  const post = () => call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "respond-async" } });
  assert.equal((await post()).status, 201);
  const a = await post();
  const b = await post();
  assert.equal(a.status, 202);
  assert.equal(b.status, 202);
  assert.equal(b.json.position, 1);
  const full = await post();
  assert.equal(full.status, 429);
  assert.equal(full.json.errorCode, "queue_full");
  assert.ok(Number(full.headers.get("retry-after")) >= 1);
  const canceled = await call(gov, `/governor/v1/queue/${a.json.id}`, { method: "DELETE" });
  assert.equal(canceled.status, 200);
  assert.equal(canceled.json.status, "CANCELED");
  assert.equal((await call(gov, `/governor/v1/queue/${b.json.id}`)).json.position, 0);
  assert.equal((await call(gov, "/governor/v1/queue/tk_nope")).status, 404);
  await until("b submitted", async () => (await call(gov, `/governor/v1/queue/${b.json.id}`)).json.status === "SUBMITTED", 10_000);
  const late = await call(gov, `/governor/v1/queue/${b.json.id}`, { method: "DELETE" });
  assert.equal(late.status, 409);
});

test("an Idempotency-Key maps a retried queued request to the same ticket", async () => {
  const { sim, gov } = await setup({ concurrency: 1, "processing-ms": 2000 }, { MAX_CONCURRENT_GENERATIONS: "1" });
  const post = (key) =>
    call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "respond-async", "idempotency-key": key } });
  assert.equal((await post("k-0")).status, 201);
  const first = await post("k-1");
  const again = await post("k-1");
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(again.json.id, first.json.id);
  const st = await call(gov, "/governor/v1/status");
  assert.equal(st.json.queue.depth, 1, "one queue slot, not two");
  await until("submitted", async () => (await call(gov, `/governor/v1/queue/${first.json.id}`)).json.status !== "QUEUED", 10_000);
  await waitFor("the retried job created at Sync", async () => (await sim.stats()).totals.created >= 2);
  const left = await drained(gov);
  assert.equal(left.submissions, 0, "nothing left to submit");
  assert.equal((await sim.stats()).totals.created, 2);
});

test("restart with jobs queued and in flight: nothing is lost, nothing runs twice", async () => {
  const { sim, gov } = await setup({ "processing-ms": 400 });
  const hook = await receiver();
  const N = 12;
  const tickets = [];
  for (let i = 0; i < N; i++) {
    const r = await call(gov, "/v2/generate", {
      method: "POST",
      body: generateBody({ webhookUrl: `${hook.url}/j${i}` }),
      headers: { prefer: "respond-async", "x-governor-client": `c${i % 3}` },
    });
    assert.ok(r.status === 201 || r.status === 202);
    if (r.status === 202) tickets.push(r.json.id);
  }
  await until("some progress", () => hook.got.length >= 2, 10_000);
  await gov.restart();
  // Every job reaches Sync exactly once and ends. (A webhook Sync sent while
  // the runtime was down is lost; reconciliation still frees its permit.)
  await until(
    "every job created and finished",
    async () => {
      const t = (await sim.stats()).totals;
      return t.created >= N && t.active === 0;
    },
    30_000,
  );
  await drained(gov);
  const stats = await sim.stats();
  assert.equal(stats.totals.created, N, "each job created exactly once at Sync");
  assert.equal(stats.totals.concurrency_limited, 0);
  assert.ok(stats.totals.peak_concurrency <= 3);
  const generations = new Set();
  for (const t of tickets) {
    const v = await call(gov, `/governor/v1/queue/${t}`);
    assert.ok(["SUBMITTED", "COMPLETED"].includes(v.json.status), `${t}: ${v.json.status}`);
    generations.add(v.json.generationId);
  }
  assert.equal(generations.size, tickets.length, "each ticket has its own generation");
  assert.ok(new Set(hook.got.map((g) => g.path)).size >= N - 3, "relays arrive for every webhook the governor received");
  await until("permits all free", async () => (await call(gov, "/governor/v1/status")).json.concurrency.inUse === 0, 10_000);
});

test("held requests (Prefer: wait): FIFO, admitted moments after capacity frees; an expired hold gets 429 + Retry-After", async () => {
  const { sim, gov } = await setup({ concurrency: 1, "processing-ms": 600, "pending-ms": 0 }, { MAX_CONCURRENT_GENERATIONS: "1" });
  const create = (wait, tag, extra = {}) =>
    call(gov, "/v2/generate", { method: "POST", body: generateBody({ outputFileName: tag, ...extra }), headers: { prefer: `wait=${wait}` } }).then((r) => ({
      ...r,
      tag,
      at: Date.now(),
    }));
  const first = await create(10, "h0");
  assert.equal(first.status, 201);
  // Three held requests, in order.
  const held = [];
  for (const tag of ["h1", "h2", "h3"]) {
    held.push(create(10, tag));
    // In line (held, or already admitted) before the next one is sent.
    const n = held.length;
    await waitFor(`${tag} in line`, async () => (await status(gov)).queue.held + (await sim.stats()).totals.created - 1 >= n);
  }
  const done = await Promise.all(held);
  for (const r of done) {
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get("preference-applied"), "wait=10");
  }
  const order = [...done].sort((a, b) => a.at - b.at).map((r) => r.tag);
  assert.deepEqual(order, ["h1", "h2", "h3"], "admitted in arrival order");
  // Each started within moments of the previous one ending (webhook → permit → admission).
  const gens = (await sim.requests()).filter((r) => r.path === "/v2/generate" && r.status === 201);
  const starts = gens.map((g) => g.at_ms);
  for (let i = 1; i < starts.length; i++) {
    const gap = starts[i] - starts[i - 1];
    assert.ok(gap >= 600 && gap < 600 + 600, `start gap ${gap} ms (duration 600)`);
  }
  assert.equal((await sim.stats()).totals.concurrency_limited, 0);
  // A hold that ends first gets the usual 429.
  assert.equal((await create(10, "busy", { options: { sim_duration_ms: 5000 } })).status, 201);
  const timed = await create(1, "late");
  assert.equal(timed.status, 429);
  assert.ok(Number(timed.headers.get("retry-after")) >= 1);
  assert.equal(timed.json.errorCode, "concurrency_limit_exceeded");
});

test("an abandoned held request frees its place in line", async () => {
  const { gov } = await setup({ concurrency: 1, "processing-ms": 1500, "pending-ms": 0 }, { MAX_CONCURRENT_GENERATIONS: "1" });
  assert.equal((await call(gov, "/v2/generate", { method: "POST", body: generateBody() })).status, 201);
  const ctrl = new AbortController();
  const abandoned = fetch(`${gov.url}/v2/generate`, {
    method: "POST",
    headers: { "x-api-key": SIM_KEY, "content-type": "application/json", prefer: "wait=30" },
    body: JSON.stringify(generateBody()),
    signal: ctrl.signal,
  }).catch(() => "aborted");
  await waitFor("the request is held", async () => (await status(gov)).queue.held === 1, 5_000);
  ctrl.abort();
  assert.equal(await abandoned, "aborted");
  await until("the place is freed", async () => (await call(gov, "/governor/v1/status")).json.queue.held === 0, 5_000);
  // The next waiter is not stuck behind a ghost.
  const next = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "wait=10" } });
  assert.equal(next.status, 201);
});

test("with every webhook lost, reconciliation still frees permits and tickets learn their final status", async () => {
  const { sim, gov } = await setup({ concurrency: 2, "processing-ms": 150, "webhook-drop-rate": 1 }, { MAX_CONCURRENT_GENERATIONS: "2", RECONCILE_MIN_MS: "300", RECONCILE_MAX_MS: "600" });
  const tickets = [];
  for (let i = 0; i < 6; i++) {
    const r = await call(gov, "/v2/generate", { method: "POST", body: generateBody(), headers: { prefer: "respond-async" } });
    assert.ok(r.status === 201 || r.status === 202, r.text);
    if (r.status === 202) tickets.push(r.json.id);
  }
  assert.ok(tickets.length >= 3);
  await until(
    "every ticket COMPLETED",
    async () => {
      const views = await Promise.all(tickets.map((t) => call(gov, `/governor/v1/queue/${t}`)));
      return views.every((v) => v.json.status === "COMPLETED");
    },
    20_000,
  );
  const stats = await sim.stats();
  assert.equal(stats.webhooks.delivered, 0, "no webhook ever reached the governor");
  assert.equal(stats.totals.created, 6);
  assert.equal(stats.totals.concurrency_limited, 0);
  assert.equal((await call(gov, "/governor/v1/status")).json.concurrency.inUse, 0);
});
