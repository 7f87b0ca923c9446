// Issue 10, findings 10, 11 (Prefer: wait) and 12, through the real runtime
// against the simulator: every upstream call is time-boxed (504 JSON, the
// create's permit kept as unknown until reconciliation frees it), relay
// deliveries are time-boxed and run side by side with reconciliation, and a
// held request makes a bounded number of calls into the account's object.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { generateBody, SIM_KEY, sleep, until, govCall } from "../lib/harness.mjs";
import { defer, setup as start, create, status } from "../lib/e2e.mjs";

const WEBHOOK_KEY = "governor-webhook-key-for-tests";
const cleanup = { push: (...fns) => fns.forEach(defer) };

const setup = (simFlags = {}, vars = {}) =>
  start({ concurrency: 2, "pending-ms": 0, "processing-ms": 300, ...simFlags }, {
    MAX_CONCURRENT_GENERATIONS: "1",
    GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
    LOCAL_MODE: "true",
    RECONCILE_MIN_MS: "300",
    RECONCILE_MAX_MS: "600",
    ...vars,
  });

const call = govCall;


/** A client hook: `hang` accepts and never answers; otherwise 204. */
async function hook({ hang = false } = {}) {
  const got = [];
  const open = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ at: Date.now(), body: Buffer.concat(chunks).toString() });
      if (hang) open.add(res);
      else res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  cleanup.push(() => {
    for (const res of open) res.destroy();
    server.closeAllConnections?.();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${server.address().port}/hook`, got };
}

test("Sync accepts a create and never answers: 504 JSON within the time box, and with cap 1 the next create is not stuck for the reservation TTL", async () => {
  const { sim, gov } = await setup({}, { UPSTREAM_TIMEOUT_CREATE_MS: "1000" });
  await sim.configure({ stall_create_ms: 120_000 });
  const hung = await create(gov);
  assert.equal(hung.status, 504, hung.text);
  assert.equal(hung.json.errorCode, "upstream_timeout");
  assert.equal(hung.json.statusCode, 504);
  assert.ok(hung.ms >= 900 && hung.ms < 1000 + 2_000, `answered after ${hung.ms} ms`);
  // The permit is kept as unknown (the generation may exist) ...
  const s = await status(gov);
  assert.equal(s.concurrency.inUse, 1);
  // ... until a listing begun later shows Sync has nothing: then it frees,
  // seconds later, not after RESERVATION_TTL_SECONDS (600).
  await sim.configure({ stall_create_ms: 0 });
  const t0 = Date.now();
  const next = await until(
    "a create passes again",
    async () => {
      const r = await create(gov);
      return r.status === 201 ? r : (assert.equal(r.status, 429, r.text), false);
    },
    10_000,
  );
  assert.equal(next.status, 201);
  assert.ok(Date.now() - t0 < 10_000);
  assert.ok((await sim.stats()).stalled >= 1, "the simulator did hold the first create");
});

test("Sync accepts a read and never answers: 504 within UPSTREAM_TIMEOUT_READ_MS; a stalled list, within UPSTREAM_TIMEOUT_LIST_MS", async () => {
  const { sim, gov } = await setup({}, { UPSTREAM_TIMEOUT_READ_MS: "700", UPSTREAM_TIMEOUT_LIST_MS: "900" });
  await sim.configure({ stall_read_ms: 120_000, stall_list_ms: 120_000 });
  const read = await call(gov, "/v2/generate/some-id");
  assert.equal(read.status, 504, read.text);
  assert.equal(read.json.errorCode, "upstream_timeout");
  assert.ok(read.ms >= 600 && read.ms < 700 + 2_000, `read answered after ${read.ms} ms`);
  const list = await call(gov, "/v2/generations?status=PENDING");
  assert.equal(list.status, 504, list.text);
  assert.ok(list.ms >= 800 && list.ms < 900 + 2_000, `list answered after ${list.ms} ms`);
});

test("a client hook that never answers delays another hook's relay and reconciliation by at most RELAY_TIMEOUT_MS", async () => {
  // Work due in the same alarm goes side by side with the hung delivery;
  // work that falls due later waits at most for its time box (an alarm
  // awaits what it started, and a Durable Object's alarms do not overlap).
  const { sim, gov } = await setup({}, { MAX_CONCURRENT_GENERATIONS: "2", RELAY_TIMEOUT_MS: "3000" });
  const slow = await hook({ hang: true });
  const fast = await hook();
  assert.equal((await create(gov, { webhookUrl: slow.url })).status, 201);
  await until("the hung hook is being called", async () => slow.got.length >= 1, 10_000);
  assert.equal((await create(gov, { webhookUrl: fast.url })).status, 201);
  await until("the other hook gets its relay", async () => fast.got.length >= 1, 3_000 + 3_000);
  // A lost webhook: only reconciliation can free that permit.
  await sim.configure({ webhook_drop_rate: 1 });
  assert.equal((await create(gov)).status, 201);
  await until("reconciliation frees the lost permit", async () => (await status(gov)).concurrency.inUse === 0, 3_000 + 6_000);
});

test("a relay delivery is time-boxed by RELAY_TIMEOUT_MS and retried", async () => {
  const { gov } = await setup({}, { RELAY_TIMEOUT_MS: "500", RELAY_BACKOFF_BASE_MS: "100", RELAY_BACKOFF_CAP_MS: "200" });
  const slow = await hook({ hang: true });
  assert.equal((await create(gov, { webhookUrl: slow.url })).status, 201);
  await until("a second attempt after the first timed out", async () => slow.got.length >= 2, 8_000);
  const gap = slow.got[1].at - slow.got[0].at;
  assert.ok(gap >= 400 && gap < 3_000, `second attempt ${gap} ms after the first`);
});

test("Prefer: wait with bounded polling keeps its place for the whole wait and ends at its deadline", async () => {
  const { sim, gov } = await setup({ "processing-ms": 60_000 }, { MAX_WAIT_SECONDS: "60" });
  assert.equal((await create(gov)).status, 201);
  // The bound itself is proved natively (core/tests/waits_and_blocks.rs);
  // here: with the sparser polls the place in line is still kept for the
  // whole wait, and the request ends at its deadline.
  const started = Date.now();
  const held = create(gov, {}, { prefer: "wait=12" });
  let sawHeld = 0;
  while (Date.now() - started < 11_000) {
    if ((await status(gov)).queue.held === 1) sawHeld++;
    await sleep(500);
  }
  const r = await held;
  assert.equal(r.status, 429, r.text);
  assert.ok(r.ms >= 11_500 && r.ms < 15_000, `held for ${r.ms} ms`);
  assert.ok(sawHeld >= 18, `the place was kept while waiting (${sawHeld} samples)`);
  assert.equal((await status(gov)).queue.held, 0, "the place is given up at the end");
  const creates = (await sim.requests()).filter((q) => q.path === "/v2/generate");
  assert.equal(creates.length, 1, "nothing was forwarded while holding");
});
