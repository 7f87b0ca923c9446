// Generation lifecycle through the real runtime: the webhook relay, forged
// callbacks, lost / duplicated / delayed webhooks, generations created
// outside the governor, reconciliation, runtime restarts and upstream 429s.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { generateBody, SIM_KEY, sleep, until } from "../lib/harness.mjs";
import { setup as setupGovernor, receiver as hookReceiver, status, drained, simDrained, waitFor } from "../lib/e2e.mjs";

const SECRET = "whsec_lifecycle_test_secret";
const WEBHOOK_KEY = "governor-webhook-key-for-tests";
const BASE_VARS = {
  MAX_CONCURRENT_GENERATIONS: "3",
  GOVERNOR_WEBHOOK_KEY: WEBHOOK_KEY,
  SYNC_WEBHOOK_SECRET: SECRET,
  LOCAL_MODE: "true",
  RECONCILE_MIN_MS: "400",
  RECONCILE_MAX_MS: "1600",
  RELAY_BACKOFF_BASE_MS: "100",
  RELAY_BACKOFF_CAP_MS: "400",
};

const setup = (simFlags = {}, vars = {}) =>
  setupGovernor({ concurrency: 3, "pending-ms": 50, "processing-ms": 300, "webhook-secret": SECRET, ...simFlags }, { ...BASE_VARS, ...vars });

/** A loopback webhook receiver at `/hook`; `failFirst` answers 503 that many times. */
const receiver = ({ failFirst = 0 } = {}) => hookReceiver({ failFirst, path: "/hook" });

const api = (gov, path, init = {}) =>
  fetch(`${gov.url}${path}`, {
    ...init,
    headers: { "x-api-key": SIM_KEY, "content-type": "application/json", ...(init.headers ?? {}) },
    signal: AbortSignal.timeout(10_000),
  });

const create = (gov, extra = {}, headers = {}) =>
  api(gov, "/v2/generate", { method: "POST", body: JSON.stringify(generateBody(extra)), headers });



function verifies(body, signature) {
  const m = /^t=(\d+),v1=([0-9a-f]+)$/.exec(signature ?? "");
  if (!m) return false;
  const mac = createHmac("sha256", SECRET).update(`${m[1]}.`).update(body).digest("hex");
  return mac === m[2];
}

test("relay: the client's webhook gets Sync's payload byte for byte, and the permit frees at once", async () => {
  const { sim, gov } = await setup();
  const hook = await receiver();
  const res = await create(gov, { webhookUrl: hook.url });
  assert.equal(res.status, 201);
  const gen = await res.json();
  // Sync was told to call the governor, not the client.
  const seen = await (await fetch(`${sim.url}/_sim/generations/${gen.id}`)).json();
  assert.match(seen.generation.webhookUrl, /\/governor\/v1\/webhook\//);
  assert.ok(!seen.generation.webhookUrl.includes("127.0.0.1:" + new URL(hook.url).port), "client URL is inside the signed token only");
  await until("relayed webhook", () => hook.got.length === 1);
  const [delivery] = hook.got;
  assert.ok(verifies(delivery.body, delivery.signature), "Sync's signature verifies on the relayed bytes");
  const payload = JSON.parse(delivery.body);
  assert.equal(payload.id, gen.id);
  assert.equal(payload.status, "COMPLETED");
  // The hook has the payload before the governor has its answer: the
  // delivery counts once that answer is in.
  const st = await until("the delivery is counted", async () => {
    const s = await status(gov);
    return s.relay.delivered >= 1 ? s : null;
  });
  assert.equal(st.concurrency.inUse, 0, "the webhook freed the permit");
  assert.equal(st.relay.delivered, 1);
});

test("a generation without webhookUrl still frees its permit through the callback", async () => {
  const { sim, gov } = await setup();
  const res = await create(gov);
  assert.equal(res.status, 201);
  await until("webhook delivered to the governor", async () => (await sim.stats()).webhooks.delivered === 1);
  assert.equal((await status(gov)).concurrency.inUse, 0);
});

test("forged, malformed and stale callbacks are refused and change nothing", async () => {
  const { sim, gov } = await setup({ "processing-ms": 4000 });
  const gen = await (await create(gov)).json();
  const seen = await (await fetch(`${sim.url}/_sim/generations/${gen.id}`)).json();
  const callback = seen.generation.webhookUrl;
  const body = JSON.stringify({ ...gen, status: "COMPLETED" });
  const t = Math.floor(Date.now() / 1000);
  const sign = (ts, b) => `t=${ts},v1=${createHmac("sha256", SECRET).update(`${ts}.${b}`).digest("hex")}`;
  const post = (url, b, sig) =>
    fetch(url, { method: "POST", body: b, headers: { "content-type": "application/json", ...(sig ? { "sync-signature": sig } : {}) } });
  const token = callback.split("/").pop();
  const [payload] = token.split(".");
  const cases = [
    [`${gov.url}/governor/v1/webhook/not-a-token`, body, sign(t, body), 401],
    [`${gov.url}/governor/v1/webhook/${payload}.AAAA`, body, sign(t, body), 401],
    [callback, body, undefined, 401],
    [callback, body, sign(t, body + " "), 401],
    [callback, body, sign(t - 3600, body), 401],
    [callback, "{not json", sign(t, "{not json"), 400],
  ];
  for (const [url, b, sig, want] of cases) {
    const r = await post(url, b, sig);
    assert.equal(r.status, want, `${url.slice(-20)} → ${r.status}`);
    const e = await r.json();
    assert.ok(e.errorCode, "a JSON error in Sync's shape");
  }
  assert.equal((await status(gov)).concurrency.inUse, 1, "nothing was released by a forged callback");
  // The genuine callback, correctly signed, releases.
  const ok = await post(callback, body, sign(t, body));
  assert.equal(ok.status, 200);
  assert.equal((await status(gov)).concurrency.inUse, 0);
});

test("dropped, duplicated and delayed webhooks, upstream 5xx and outside generations converge", async () => {
  const { sim, gov } = await setup(
    { "webhook-drop-rate": 0.5, "webhook-dup-rate": 0.5, "webhook-reorder-ms": 300, seed: 7, concurrency: 4 },
    { MAX_CONCURRENT_GENERATIONS: "4" },
  );
  const hook = await receiver();
  let created = 0;
  for (let i = 0; i < 40 && created < 8; i++) {
    const r = await create(gov, { webhookUrl: hook.url });
    if (r.status === 201) created++;
    else assert.equal(r.status, 429);
    if (r.status !== 201) await sleep(Math.min(1000, Number(r.headers.get("retry-after")) * 1000));
  }
  assert.equal(created, 8);
  // Another client of the same key creates work directly at Sync.
  await sim.outside({ key: SIM_KEY, count: 2, duration_ms: 1500 });
  // A window of upstream 5xx that at least one of the governor's own requests meets.
  const before = (await sim.stats()).totals.requests.other;
  await sim.configure({ error_rate: 0.3 });
  await waitFor("a governor request during the 5xx window", async () => (await sim.stats()).totals.requests.other > before + 1);
  await sim.configure({ error_rate: 0 });
  // After a reconciliation period the governor's permits equal Sync's active count.
  await until(
    "permits converge to the simulator's active count",
    async () => {
      const [st, stats] = await Promise.all([status(gov), sim.stats()]);
      return st.concurrency.inUse === stats.totals.active && stats.totals.active === 0 && st.reconcile.runs > 0;
    },
    15_000,
  );
  const stats = await sim.stats();
  assert.equal(stats.totals.rate_limited.generate, 0);
  assert.equal(stats.totals.concurrency_limited, 0, "Sync never refused for concurrency");
  assert.ok(stats.totals.peak_concurrency <= 4);
  // Each end Sync actually delivered reached the client exactly once: duplicates are dropped.
  const deliveredEnds = async () =>
    new Set(
      (await sim.webhooks())
        .filter((d) => !d.dropped && d.status >= 200 && d.status < 300)
        .map((d) => `${d.generation_id}/${d.generation_status}`),
    );
  // Delayed copies may still be on their way: wait until both sides agree.
  let ends = await deliveredEnds();
  await until("relays", async () => {
    ends = await deliveredEnds();
    return hook.got.length === ends.size;
  });
  // Sync has sent every copy it scheduled, and the governor relayed what it got.
  await simDrained(sim);
  await drained(gov);
  ends = await deliveredEnds();
  const relayed = hook.got.map((g) => JSON.parse(g.body)).map((p) => `${p.id}/${p.status}`);
  assert.equal(new Set(relayed).size, relayed.length, "no end relayed twice");
  assert.deepEqual(new Set(relayed), ends);
});

test("outside generations are adopted and count against the cap", async () => {
  const { sim, gov } = await setup({ concurrency: 2 }, { MAX_CONCURRENT_GENERATIONS: "2" });
  const r = await create(gov, { options: { sim_duration_ms: 4000 } });
  assert.equal(r.status, 201);
  await sim.outside({ key: SIM_KEY, count: 1, duration_ms: 4000 });
  // Sync is now full; reconciliation (while the governor holds a permit) adopts the outsider.
  await until("adoption", async () => (await status(gov)).concurrency.inFlight.some((g) => g.adopted), 3_000);
  const refused = await create(gov);
  assert.equal(refused.status, 429);
  const body = await refused.json();
  assert.equal(body.errorCode, "concurrency_limit_exceeded");
  assert.ok(Number(refused.headers.get("retry-after")) >= 1);
  assert.equal((await sim.stats()).totals.concurrency_limited, 0, "the governor refused it, not Sync");
});

test("a restart during a pending relay delivery still delivers", async () => {
  const { gov } = await setup();
  const hook = await receiver({ failFirst: 2 });
  const gen = await (await create(gov, { webhookUrl: hook.url })).json();
  await until("first failed attempt", () => hook.failures() >= 1);
  await gov.restart();
  await until("delivery after restart", () => hook.got.length === 1, 15_000);
  assert.equal(JSON.parse(hook.got[0].body).id, gen.id);
  assert.ok(verifies(hook.got[0].body, hook.got[0].signature));
});

test("upstream 429s: clients get the governor's 429 with Retry-After, the request rate drops, then recovers", async () => {
  const { sim, gov } = await setup({}, { UPSTREAM_BACKOFF_BASE_MS: "300", UPSTREAM_BACKOFF_CAP_MS: "1200" });
  await sim.configure({ inject_429_rate: 1.0 });
  const before = (await sim.stats()).totals.requests.other;
  const codes = [];
  const deadline = Date.now() + 2500;
  let attempts = 0;
  while (Date.now() < deadline && attempts < 200) {
    attempts++;
    const r = await api(gov, "/v2/generations?limit=1");
    codes.push(r.status);
    if (r.status === 429) {
      assert.ok(Number(r.headers.get("retry-after")) >= 1);
      const e = await r.json();
      assert.equal(e.errorCode, "rate_limit_exceeded");
    } else await r.arrayBuffer();
    await sleep(10);
  }
  const forwarded = (await sim.stats()).totals.requests.other - before;
  assert.ok(codes.every((c) => c === 429), `only 429s, never 5xx: ${[...new Set(codes)]}`);
  assert.ok(forwarded < attempts / 3, `the governor held back: ${forwarded} of ${attempts} reached Sync`);
  await sim.configure({ inject_429_rate: 0 });
  await until(
    "recovery",
    async () => {
      const r = await api(gov, "/v2/generations?limit=1");
      await r.arrayBuffer();
      return r.status === 200;
    },
    5_000,
  );
});
