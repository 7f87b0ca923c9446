// Sharing one Sync account among its clients (issue 17), through real
// workerd against the simulator: weighted shares of completed generations,
// an idle client's share lent in the others' ratio, a reservation honoured
// against a greedy client, a light client's queue wait behind a greedy one,
// a client's own limit named in its 429, and status per client.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { generateBody, SIM_KEY, until, govCall, sleep } from "../lib/harness.mjs";
import { setup as setupGovernor, receiver as hookReceiver } from "../lib/e2e.mjs";

const ADMIN = "shares-test-admin-key-0123456789";

/** Managed keys: one per client name, all of account `acme`. */
const keyOf = (client) => `ck-${client}-0123456789abcdef`;
const clientKeys = (clients) =>
  JSON.stringify(Object.fromEntries(clients.map((c) => [keyOf(c), { account: "acme", client: c }])));

/** Every test's simulator and governor: no rate limit in the way, a deep queue. */
const quickSim = { "generate-per-minute": 100_000, "other-per-minute": 100_000 };
const quickVars = {
  GOVERNOR_ADMIN_KEY: ADMIN,
  GENERATE_PER_MINUTE: "100000",
  REQUESTS_PER_MINUTE: "100000",
  GOVERNOR_WEBHOOK_KEY: "shares-test-webhook-key-0123456789",
  LOCAL_MODE: "true",
  RECONCILE_MIN_MS: "1000",
  QUEUE_MAX_DEPTH: "5000",
};

/** Managed keys for `clients` on one account. */
const setup = (clients, vars = {}, simFlags = {}) =>
  setupGovernor({ ...quickSim, ...simFlags }, { ...quickVars, GOVERNOR_CLIENT_KEYS: clientKeys(clients), SYNC_API_KEY: SIM_KEY, ...vars });

/**
 * Relayed webhooks at /<client>/<n>: `got` is the completions per client,
 * with times, since the last `reset()`.
 */
async function receiver() {
  const hook = await hookReceiver();
  let from = 0;
  return {
    url: hook.url,
    get got() {
      return hook.got
        .slice(from)
        .filter((g) => g.json?.status === "COMPLETED")
        .map((g) => ({ client: g.path.split("/")[1], at: g.at }));
    },
    reset() {
      from = hook.got.length;
    },
  };
}

const as = (client, path, opts = {}) => govCall(gov0(opts), path, { ...opts, key: keyOf(client) });
const gov0 = (opts) => opts.gov;
const admin = (gov, path, opts = {}) =>
  govCall(gov, `/governor/v1/admin${path}`, { key: null, ...opts, headers: { authorization: `Bearer ${ADMIN}` } });

/** Queue `n` jobs for `client` (Prefer: respond-async); returns their tickets. */
async function enqueue(gov, client, n, hookUrl) {
  const tickets = [];
  for (let i = 0; i < n; i++) {
    const body = generateBody(hookUrl ? { webhookUrl: `${hookUrl}/${client}/${i}` } : {});
    const r = await as(client, "/v2/generate", { gov, method: "POST", body, headers: { prefer: "respond-async" } });
    assert.ok(r.status === 202 || r.status === 201, `${client}: ${r.status} ${r.text}`);
    if (r.status === 202) tickets.push(r.json.id);
  }
  return tickets;
}

/** Completed generations per client between two instants. */
const countBetween = (got, from, to) => {
  const out = {};
  for (const g of got) if (g.at >= from && g.at < to) out[g.client] = (out[g.client] ?? 0) + 1;
  return out;
};

/**
 * Queue a backlog for every client while the account is paused, resume,
 * let the line settle, then count the completions of a window. `mode`
 * names the account and how a client calls (managed keys by default).
 */
async function sharesOf(gov, hook, backlog, mode = managed) {
  assert.equal((await admin(gov, `/accounts/${mode.account}/pause`, { method: "POST", body: { retryAfterSeconds: 5 } })).status, 200);
  for (const [client, n] of Object.entries(backlog)) await mode.enqueue.call(mode, gov, client, n, hook.url);
  assert.equal((await admin(gov, `/accounts/${mode.account}/resume`, { method: "POST" })).status, 200);
  const from = Date.now() + 2_000;
  const to = from + 14_000;
  await sleep(to - Date.now() + 500);
  const st = (await mode.call(Object.keys(backlog)[0], "/governor/v1/status", { gov })).json;
  for (const c of Object.keys(backlog)) {
    const view = st.clients.find((v) => v.client === mode.name(c));
    assert.ok(view && view.queued > 0, `${c} still has a backlog at the end of the window (${JSON.stringify(view)})`);
  }
  const counts = countBetween(hook.got, from, to);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return { counts, total, shares: Object.fromEntries(Object.keys(backlog).map((c) => [c, (counts[c] ?? 0) / total])), st };
}

const managed = { account: "a-acme", enqueue, call: as, name: (c) => c };

/**
 * Pass-through mode: every caller holds the one Sync key (the account is
 * `k-<fingerprint>`), and names its client with `X-Governor-Client`.
 */
const PASS_ACCOUNT = `k-${createHash("sha256").update(`sync-governor/v1/${SIM_KEY}`).digest("hex").slice(0, 32)}`;
const passCall = (client, path, opts = {}) =>
  govCall(opts.gov, path, { ...opts, headers: { ...(opts.headers ?? {}), "x-governor-client": client } });
const passThrough = {
  account: PASS_ACCOUNT,
  call: passCall,
  name: (c) => `h-${c}`,
  header: (c) => c,
  async enqueue(gov, client, n, hookUrl) {
    for (let i = 0; i < n; i++) {
      const body = generateBody({ webhookUrl: `${hookUrl}/${client}/${i}` });
      const r = await passCall(this.header(client), "/v2/generate", { gov, method: "POST", body, headers: { prefer: "respond-async" } });
      assert.equal(r.status, 202, `${client}: ${r.status} ${r.text}`);
    }
  },
};

test("weights 1:2:4 on a cap of 7: completed generations within 5% of 1/7, 2/7, 4/7; with one idle, the other two split its share 1:2", async () => {
  const clients = ["one", "two", "four"];
  const limits = { acme: { one: { weight: 1 }, two: { weight: 2 }, four: { weight: 4 } } };
  const { gov } = await setup(clients, { MAX_CONCURRENT_GENERATIONS: "7", CLIENT_LIMITS: JSON.stringify(limits) }, {
    concurrency: 7,
    "pending-ms": 20,
    "processing-ms": 380,
  });
  const hook = await receiver();
  const all = await sharesOf(gov, hook, { one: 120, two: 180, four: 300 });
  const want = { one: 1 / 7, two: 2 / 7, four: 4 / 7 };
  console.log(`# weights 1:2:4, cap 7: ${JSON.stringify(all.counts)} of ${all.total}: ${JSON.stringify(all.shares)}`);
  assert.ok(all.total >= 150, `enough completions to judge (${all.total})`);
  for (const c of clients) {
    assert.ok(Math.abs(all.shares[c] - want[c]) <= 0.05 * want[c], `${c}: ${all.shares[c]} vs ${want[c]}`);
  }
  // Status shows the shares and the limits' sources.
  const four = all.st.clients.find((v) => v.client === "four");
  assert.equal(four.weight, 4);
  assert.equal(four.sources.weight, "var");
  assert.ok(Math.abs(four.targetShare - 4 / 7) < 1e-9);

  // Drain what is left (queue cancel through the admin API), then one client idle.
  assert.equal((await admin(gov, "/accounts/a-acme/queue", { method: "DELETE" })).status, 200);
  await until("the account drained", async () => (await as("one", "/governor/v1/status", { gov })).json.concurrency.inUse === 0, 20_000);
  hook.reset();
  const two = await sharesOf(gov, hook, { one: 160, two: 300 });
  console.log(`# weights 1:2 (four idle), cap 7: ${JSON.stringify(two.counts)} of ${two.total}: ${JSON.stringify(two.shares)}`);
  assert.ok(Math.abs(two.shares.one - 1 / 3) <= 0.05 / 3, `one: ${two.shares.one}`);
  assert.ok(Math.abs(two.shares.two - 2 / 3) <= 0.05 * (2 / 3), `two: ${two.shares.two}`);
});

test("pass-through: X-Governor-Client one|h-two|four with CLIENT_LIMITS weights 1:2:4 under the header's names, on a cap of 7: completed generations within 5% of 1/7, 2/7, 4/7", async () => {
  // The operator writes the names the callers send; `h-two` and `two` are one client.
  const limits = { "*": { one: { weight: 1 }, two: { weight: 2 }, "h-four": { weight: 4 } } };
  const { gov } = await setupGovernor(
    { ...quickSim, concurrency: 7, "pending-ms": 20, "processing-ms": 380 },
    { ...quickVars, MAX_CONCURRENT_GENERATIONS: "7", CLIENT_LIMITS: JSON.stringify(limits) },
  );
  // Sync accepts the key once before the account stores anything (issue 19 finding 5).
  assert.equal((await passCall("one", "/v2/generations?limit=1", { gov })).status, 200);
  const hook = await receiver();
  const got = await sharesOf(gov, hook, { one: 120, two: 180, four: 300 }, { ...passThrough, header: (c) => (c === "two" ? "h-two" : c) });
  const want = { one: 1 / 7, two: 2 / 7, four: 4 / 7 };
  console.log(`# pass-through, weights 1:2:4, cap 7: ${JSON.stringify(got.counts)} of ${got.total}: ${JSON.stringify(got.shares)}`);
  assert.ok(got.total >= 150, `enough completions to judge (${got.total})`);
  for (const c of Object.keys(want)) {
    assert.ok(Math.abs(got.shares[c] - want[c]) <= 0.05 * want[c], `${c}: ${got.shares[c]} vs ${want[c]}`);
  }
  for (const [c, w] of [["h-one", 1], ["h-two", 2], ["h-four", 4]]) {
    const view = got.st.clients.find((v) => v.client === c);
    assert.deepEqual([view.weight, view.sources.weight], [w, "var"], c);
  }
  assert.ok(!got.st.clients.some((v) => v.client.startsWith("h-h-")), "h-two is not h-h-two");
});

/** When a ticket left QUEUED (polled every 25 ms, bounded). */
async function startedAt(gov, client, ticket, timeoutMs) {
  return until(
    `ticket ${ticket} submitted`,
    async () => {
      const r = await as(client, `/governor/v1/queue/${ticket}`, { gov });
      return r.json && r.json.status !== "QUEUED" ? Date.now() : null;
    },
    timeoutMs,
  );
}

test("reserved: 2 against a greedy client filling the cap: both reserved jobs start within one generation slot of asking", async () => {
  const GENERATION = 2_000;
  const limits = { acme: { vip: { reserved: 2 }, greedy: { weight: 50 } } };
  const { gov } = await setup(["vip", "greedy"], { MAX_CONCURRENT_GENERATIONS: "4", CLIENT_LIMITS: JSON.stringify(limits) }, {
    concurrency: 4,
    "pending-ms": 50,
    "processing-ms": GENERATION - 50,
  });
  await enqueue(gov, "greedy", 60);
  await until("greedy fills the cap", async () => (await as("vip", "/governor/v1/status", { gov })).json.concurrency.inUse === 4, 20_000);
  // Asked while greedy holds every permit: each reserved job goes at the
  // next permit that frees (queued, 202), or at once (201) when one freed
  // while it was asked for (a loaded machine's enqueue can outlast a slot).
  const asked = Date.now();
  const starts = [];
  for (let i = 0; i < 2; i++) {
    const r = await as("vip", "/v2/generate", { gov, method: "POST", body: generateBody(), headers: { prefer: "respond-async" } });
    assert.ok(r.status === 201 || r.status === 202, `vip: ${r.status} ${r.text}`);
    starts.push(r.status === 202 ? startedAt(gov, "vip", r.json.id, 3 * GENERATION) : Promise.resolve(Date.now()));
  }
  const waits = (await Promise.all(starts)).map((s) => s - asked);
  console.log(`# reserved 2 vs greedy on cap 4, generation ${GENERATION} ms: vip waits ${JSON.stringify(waits)} ms`);
  for (const w of waits) assert.ok(w <= GENERATION + 500, `a reserved job waited ${w} ms (one slot is ${GENERATION} ms)`);
  const st = (await as("vip", "/governor/v1/status", { gov })).json;
  const vip = st.clients.find((v) => v.client === "vip");
  assert.equal(vip.reserved, 2);
  assert.ok(st.clients.find((v) => v.client === "greedy").queued > 40, "greedy still has its backlog");
});

test("a greedy client with 200 queued jobs and a light one submitting every 2 s: the light client's queue wait stays under one generation", async () => {
  const GENERATION = 1_500;
  const { gov } = await setup(["light", "greedy"], { MAX_CONCURRENT_GENERATIONS: "3" }, {
    concurrency: 3,
    "pending-ms": 50,
    "processing-ms": GENERATION - 50,
  });
  await enqueue(gov, "greedy", 200);
  await until("greedy fills the cap", async () => (await as("light", "/governor/v1/status", { gov })).json.concurrency.inUse === 3, 20_000);
  const waits = [];
  for (let i = 0; i < 6; i++) {
    const asked = Date.now();
    const [ticket] = await enqueue(gov, "light", 1);
    if (ticket) waits.push((await startedAt(gov, "light", ticket, 3 * GENERATION)) - asked);
    else waits.push(0); // admitted at once
    await sleep(Math.max(0, asked + 2_000 - Date.now()));
  }
  console.log(`# greedy 200 queued vs light every 2 s, cap 3, generation ${GENERATION} ms: light waits ${JSON.stringify(waits)} ms`);
  for (const w of waits) assert.ok(w <= GENERATION + 300, `the light client waited ${w} ms (a generation is ${GENERATION} ms)`);
  const greedy = (await as("light", "/governor/v1/status", { gov })).json.clients.find((v) => v.client === "greedy");
  assert.ok(greedy.queued >= 150, `greedy kept its backlog (${greedy.queued})`);
  // Queued and held work counts toward its client's usage.
  assert.equal(greedy.usage, greedy.inUse + greedy.queued + greedy.held);
  assert.ok(greedy.usageShare > 0.9 && greedy.usageShare <= 1, `greedy's usage share ${greedy.usageShare}`);
});

test("a client's own limits: 429 names client_concurrency with an honest Retry-After; the account's other clients still pass", async () => {
  const limits = { "*": { "*": { concurrency: 1 } } };
  const { gov } = await setup(["a", "b"], { MAX_CONCURRENT_GENERATIONS: "3", CLIENT_LIMITS: JSON.stringify(limits) }, {
    concurrency: 3,
    "pending-ms": 50,
    "processing-ms": 5_000,
  });
  assert.equal((await as("a", "/v2/generate", { gov, method: "POST", body: generateBody() })).status, 201);
  const r = await as("a", "/v2/generate", { gov, method: "POST", body: generateBody() });
  assert.equal(r.status, 429, r.text);
  assert.equal(r.json.policy, "client_concurrency");
  assert.equal(r.json.limit, 1);
  assert.ok(Number(r.headers.get("retry-after")) >= 1);
  assert.match(r.headers.get("ratelimit-policy") ?? "", /"concurrency";q=3;qu="concurrent-requests", "client_concurrency";q=1;qu="concurrent-requests"/);
  assert.match(r.headers.get("ratelimit") ?? "", /"client_concurrency";r=0;t=[1-9]/);
  assert.equal((await as("b", "/v2/generate", { gov, method: "POST", body: generateBody() })).status, 201);
  const st = (await as("a", "/governor/v1/status", { gov })).json;
  assert.deepEqual(
    st.clients.filter((v) => v.inUse > 0).map((v) => [v.client, v.inUse, v.concurrency, v.sources.concurrency]).sort(),
    [
      ["a", 1, 1, "var"],
      ["b", 1, 1, "var"],
    ],
  );
});

test("issue 19 finding 9: a caller rotating X-Governor-Client names gets no more than its key's share (managed keys)", async () => {
  const { gov } = await setup(["honest", "rotator"], { MAX_CONCURRENT_GENERATIONS: "1" }, {
    concurrency: 1,
    "pending-ms": 20,
    "processing-ms": 180,
  });
  const hook = await receiver();
  assert.equal((await admin(gov, "/accounts/a-acme/pause", { method: "POST", body: { retryAfterSeconds: 5 } })).status, 200);
  for (let i = 0; i < 20; i++) {
    await enqueue(gov, "honest", 1, hook.url);
    // Ten names from one key: the key is the client, the header names nothing.
    for (let n = 0; n < 10; n++) {
      const body = generateBody({ webhookUrl: `${hook.url}/rotator/${i}-${n}` });
      const r = await as("rotator", "/v2/generate", { gov, method: "POST", body, headers: { prefer: "respond-async", "x-governor-client": `name-${n}` } });
      assert.equal(r.status, 202, r.text);
    }
  }
  assert.equal((await admin(gov, "/accounts/a-acme/resume", { method: "POST" })).status, 200);
  await until("22 turns", () => hook.got.length >= 22, 30_000);
  const first = hook.got.slice(0, 22);
  const honest = first.filter((g) => g.client === "honest").length;
  console.log(`# finding 9: of the first 22 turns, honest ${honest}, rotator (10 names) ${22 - honest}`);
  assert.ok(honest >= 10, `the honest key got ${honest} of 22 turns`);
  const st = (await as("honest", "/governor/v1/status", { gov })).json;
  assert.deepEqual(st.clients.map((c) => c.client).sort(), ["honest", "rotator"], "no client per header name");
});
