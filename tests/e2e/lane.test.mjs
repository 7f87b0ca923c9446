// The batch lane (issue 18): queued jobs whose sender can wait
// (`X-Governor-Lane: batch`, or a client whose CLIENT_LIMITS entry says
// "lane": "batch") drain through Sync's Batch API with SYNC_BATCH=on: 600
// of them through 2 batch calls, each ticket showing its batch and then its
// own generation and final status; a line the batch rejects (an input over
// 30 s) falls back and completes directly; jobs without the lane are never
// batched; a 402 turns the lane off for the account and its work goes direct.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, status, waitFor } from "../lib/e2e.mjs";
import { govCall, SIM_KEY } from "../lib/harness.mjs";

const SIM = { concurrency: 3, "pending-ms": 50, "processing-ms": 200, "batch-concurrency": 2 };
const VARS = {
  MAX_CONCURRENT_GENERATIONS: "3",
  MAX_CONCURRENT_BATCHES: "2",
  LOCAL_MODE: "true",
  SYNC_BATCH: "on",
  SYNC_BATCH_POLL_MS: "500",
  SYNC_BATCH_LINGER_MS: "15000",
  RECONCILE_MIN_MS: "1000",
  RECONCILE_MAX_MS: "4000",
};

const body = (tag, i, options = {}) => ({
  model: "lipsync-2",
  input: [
    { type: "video", url: `https://example.com/${tag}-${i}.mp4` },
    { type: "audio", url: "https://example.com/a.wav" },
  ],
  options,
});

/** Queue one job; `lane`: with X-Governor-Lane: batch. Returns the ticket id (or Sync's answer). */
async function queue(gov, tag, i, { lane = true, client = "c", options } = {}) {
  const headers = { prefer: "respond-async", "x-governor-client": client };
  if (lane) headers["x-governor-lane"] = "batch";
  const r = await govCall(gov, "/v2/generate", { method: "POST", body: body(tag, i, options), headers });
  return { status: r.status, id: r.json?.id, json: r.json };
}

/** Run `fn` over `items`, `width` at a time. */
async function pool(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

const ticket = async (gov, id) => (await govCall(gov, `/governor/v1/queue/${id}`)).json;

const calls = async (sim, method, path) =>
  (await sim.requests(1000)).filter((r) => r.method === method && r.path.split("?")[0] === path);

test("600 queued batch-lane jobs drain through 2 batch calls; rejected lines fall back and complete directly; jobs without the lane are never batched", async () => {
  const { sim, gov } = await setup(SIM, VARS);
  await sim.configure({ batch_pending_ms: 100, batch_generation_ms: 600, batch_webhook_drop_rate: 1.0 });
  // Work without the lane: three take the cap for a few seconds, five
  // more are queued behind them; none is ever batched.
  const running = await pool([0, 1, 2], 3, (i) => queue(gov, "direct-long", i, { lane: false, client: "d", options: { sim_duration_ms: 4_000 } }));
  assert.deepEqual(running.map((r) => r.status), [201, 201, 201]);
  const queuedDirect = await pool([...Array(5).keys()], 5, (i) => queue(gov, "direct", i, { lane: false, client: "d" }));
  assert.deepEqual(queuedDirect.map((r) => r.status), [202, 202, 202, 202, 202]);
  const direct = [...running, ...queuedDirect];
  // Five lines claim an input over 30 s: the batch rejects them.
  const long = new Set([3, 150, 333, 510, 599]);
  const lane = await pool([...Array(600).keys()], 16, (i) =>
    queue(gov, "lane", i, { client: i % 3 ? "b" : "a", options: long.has(i) ? { sim_input_ms: 45_000 } : {} }),
  );
  assert.ok(lane.every((r) => r.status === 202 && r.id), JSON.stringify(lane.find((r) => r.status !== 202)));
  // The direct creates above proved the key (a provisional account's lane work goes direct).
  const first = await ticket(gov, lane[0].id);
  // Lane work never waits in the direct line: it waits for a batch, is in one, or already ended through one.
  assert.ok(["WAITING_FOR_BATCH", "BATCHED"].includes(first.status) || (first.status === "COMPLETED" && first.batchId), JSON.stringify(first));

  const st = await waitFor(
    "every lane batch to end and the queue to drain",
    async () => {
      const s = await status(gov);
      return s.lane.waiting === 0 && s.lane.inFlight.length === 0 && s.queue.depth === 0 && s;
    },
    90_000,
  );
  assert.equal(st.lane.batches, 2, JSON.stringify(st.lane));
  assert.equal(st.lane.jobsBatched, 600);
  assert.equal(st.lane.fellBack, long.size);
  assert.equal(st.lane.created, 600 - long.size);
  assert.equal(st.lane.callsSaved, 600 - long.size - 2);
  assert.equal(st.batches.inUse, 0, "the lane's batch permits ended with the batches (every batch webhook lost)");

  const batchCalls = await calls(sim, "POST", "/v2/batch");
  assert.equal(batchCalls.length, 2, "two batch calls upstream");
  assert.ok(batchCalls.every((c) => c.status === 201), JSON.stringify(batchCalls.map((c) => c.status)));
  const k = (await sim.stats()).keys[SIM_KEY];
  assert.equal(k.requests.generate, direct.length + long.size, "a create for each direct job and each rejected line, none for batched ones");
  assert.equal((await sim.requests(1000)).filter((r) => r.status === 429).length, 0, "Sync answered no 429");

  // Each lane job's result is reachable from its ticket.
  const views = await pool(lane, 16, (r) => ticket(gov, r.id));
  const batches = new Set();
  for (const [i, v] of views.entries()) {
    assert.equal(v.status, "COMPLETED", JSON.stringify(v));
    assert.ok(v.generationId, JSON.stringify(v));
    assert.ok(v.batchId, `ticket ${i} shows its batch`);
    batches.add(v.batchId);
  }
  assert.equal(batches.size, 2);
  // A rejected line completed as a direct create: its generation is no batch's.
  const rejected = views.filter((_, i) => long.has(i));
  for (const v of rejected) {
    const g = await govCall(gov, `/v2/generate/${v.generationId}`);
    assert.equal(g.status, 200);
    assert.equal(g.json.status, "COMPLETED");
  }
  assert.equal(k.batches_created, 2);
  // Jobs without the lane: their tickets never show a batch.
  for (const r of queuedDirect) {
    const v = await ticket(gov, r.id);
    assert.equal(v.status, "COMPLETED", JSON.stringify(v));
    assert.equal(v.batchId, undefined, JSON.stringify(v));
  }
});

test("a 402 turns the lane off for the account with a clear status; its work completes directly", async () => {
  const { sim, gov } = await setup(SIM, { ...VARS, SYNC_BATCH_LINGER_MS: "0" });
  await sim.configure({ batches_enabled: false });
  // A read Sync answers proves the key: until then the account is provisional and its lane work goes direct.
  assert.equal((await govCall(gov, "/v2/generations?limit=1")).status, 200);
  const jobs = await pool([...Array(20).keys()], 10, (i) => queue(gov, "plan", i));
  assert.ok(jobs.every((r) => r.status === 202));
  let last;
  const st = await waitFor(
    "the lane to turn off and the jobs to drain",
    async () => {
      const s = (last = await status(gov));
      return s.lane.off && s.queue.depth === 0 && s;
    },
    60_000,
  ).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify({ lane: last?.lane, queue: last?.queue, batches: last?.batches })}`);
  });
  assert.equal(st.lane.enabled, false);
  assert.equal(st.lane.off, "plan_without_batches");
  assert.equal(st.lane.fellBack, 20);
  assert.equal(st.batches.inUse, 0);
  for (const r of jobs) await waitFor(`ticket ${r.id} to complete`, async () => (await ticket(gov, r.id)).status === "COMPLETED", 30_000);
  // New lane work is direct work now.
  const later = await queue(gov, "plan", 99);
  assert.ok([201, 202].includes(later.status));
  assert.equal((await calls(sim, "POST", "/v2/batch")).length, 1, "one batch call taught the plan");
});
