// The operations issue, end to end in workerd against the simulator: the
// admin API (key, overrides with sources, pause/resume, queue list, cancel,
// drain, force-release, the accounts directory), Prometheus metrics parsed
// by a real exposition parser, shadow mode, load shedding, structured logs
// without secrets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { govCall, until, generateBody, sha256, ROOT, SIM_KEY } from "../lib/harness.mjs";
import { setup as start, status } from "../lib/e2e.mjs";

const ADMIN = "admin-key-for-the-operations-test-0123";
const ACCOUNT = `k-${sha256(`sync-governor/v1/${SIM_KEY}`).slice(0, 32)}`;

const setup = (vars = {}, simArgs = {}, opts = {}) =>
  start(simArgs, { GOVERNOR_WEBHOOK_KEY: "operations-test-webhook-key-0123", ...vars }, opts);

const admin = (gov, path, opts = {}) =>
  govCall(gov, `/governor/v1/admin${path}`, { key: null, ...opts, headers: { authorization: `Bearer ${ADMIN}`, ...(opts.headers ?? {}) } });
const create = (gov, headers = {}, extra = {}) => govCall(gov, "/v2/generate", { method: "POST", body: generateBody(extra), headers });

/** Parse Prometheus text with the reference Python parser: [{name, labels, value}]. */
function parseMetrics(text) {
  const py = join(ROOT, ".venv", "bin", "python");
  assert.ok(existsSync(py), "scripts/setup.sh installs prometheus_client in .venv");
  const code = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))`;
  const r = spawnSync(py, ["-c", code], { input: text, encoding: "utf8" });
  assert.equal(r.status, 0, `the exposition parser refused the text: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
const sample = (samples, name, labels) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

test("without GOVERNOR_ADMIN_KEY the admin routes and metrics do not exist", async () => {
  const { gov } = await setup();
  for (const path of ["/governor/v1/admin/accounts", "/governor/v1/metrics", `/governor/v1/admin/accounts/${ACCOUNT}`]) {
    const r = await govCall(gov, path, { key: null, headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(r.status, 404, path);
    assert.equal(r.json.errorCode, "not_found");
  }
});

test("admin key: wrong or missing is 401, never forwarded; overrides apply to the next decision and show their source", async () => {
  const { sim, gov } = await setup({ GOVERNOR_ADMIN_KEY: ADMIN, SYNC_PLAN: "creator" });
  for (const headers of [{}, { authorization: "Bearer nope-nope-nope-nope" }, { "x-governor-admin-key": ADMIN + "x" }]) {
    const r = await govCall(gov, "/governor/v1/admin/accounts", { key: null, headers });
    assert.equal(r.status, 401);
    assert.equal(r.json.errorCode, "admin_unauthorized");
    assert.ok(!r.text.includes(ADMIN));
  }
  // A client key is not an admin key.
  assert.equal((await govCall(gov, "/governor/v1/admin/accounts", { headers: { authorization: `Bearer ${SIM_KEY}` } })).status, 401);
  const before = (await sim.stats()).requests ?? 0;

  let r = await admin(gov, `/accounts/${ACCOUNT}/limits`, { method: "PUT", body: { generatePerMinute: 2, plan: "scale" } });
  assert.equal(r.status, 200, r.text);
  const find = (limits, n) => limits.find((l) => l.name === n);
  assert.deepEqual(find(r.json.limits, "generate.perMinute"), { name: "generate.perMinute", value: 2, source: "override" });
  assert.deepEqual(find(r.json.limits, "concurrency"), { name: "concurrency", value: 15, source: "override" });
  assert.equal(find(r.json.limits, "requests.perMinute").source, "default");
  // The x-governor-admin-key header works too.
  r = await govCall(gov, `/governor/v1/admin/accounts/${ACCOUNT}`, { key: null, headers: { "x-governor-admin-key": ADMIN } });
  assert.equal(r.status, 200);
  assert.equal(find(r.json.limits, "generate.perMinute").value, 2);
  assert.equal(r.json.concurrency.limit, 15);

  assert.equal((await create(gov)).status, 201);
  assert.equal((await create(gov)).status, 201);
  r = await create(gov);
  assert.equal(r.status, 429);
  assert.equal(r.json.policy, "generate");
  assert.equal(r.json.limit, 2);
  assert.match(r.headers.get("ratelimit-policy"), /"generate";q=2;/);

  // Bad patches are clear 400s, never stored.
  for (const body of [{ generatePerMinute: 0 }, { plan: "gold" }, { surprise: 1 }, [1], { classes: { nope: { perMinute: 1 } } }]) {
    const bad = await admin(gov, `/accounts/${ACCOUNT}/limits`, { method: "PUT", body });
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal(bad.json.errorCode, "invalid_request");
  }
  const malformed = await admin(gov, `/accounts/${ACCOUNT}/limits`, { method: "PUT", body: "{not json" });
  assert.equal(malformed.status, 400);

  // Survives a runtime restart.
  await gov.restart();
  r = await admin(gov, `/accounts/${ACCOUNT}`);
  assert.equal(find(r.json.limits, "generate.perMinute").source, "override");

  r = await admin(gov, `/accounts/${ACCOUNT}/limits`, { method: "DELETE" });
  assert.equal(r.status, 200);
  assert.equal(find(r.json.limits, "concurrency").source, "var");
  assert.equal(find(r.json.limits, "concurrency").value, 3);
  assert.equal(find(r.json.limits, "generate.perMinute").value, 60);
  // Admin calls never reach Sync.
  const reqs = await sim.requests(1000);
  assert.ok(reqs.every((q) => !JSON.stringify(q).includes(ADMIN)), "the admin key never reaches Sync");
  assert.ok(before >= 0);
  // Odd account names and paths are 404 JSON.
  for (const path of ["/accounts/zzz", "/accounts/k-xyz/limits", `/accounts/${ACCOUNT}/nope`, `/accounts/${ACCOUNT}/queue/a/b`]) {
    const odd = await admin(gov, path);
    assert.equal(odd.status, 404, path);
  }
  assert.equal((await admin(gov, `/accounts/${ACCOUNT}/pause`)).status, 405);
});

test("pause: new requests get 503 account_paused with Retry-After; queued work waits and goes on resume", async () => {
  const { sim, gov } = await setup({ GOVERNOR_ADMIN_KEY: ADMIN, SYNC_PLAN: "creator" });
  let r = await admin(gov, `/accounts/${ACCOUNT}/pause`, { method: "POST", body: { retryAfterSeconds: 7, reason: "maintenance" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.paused.retryAfterSeconds, 7);
  r = await govCall(gov, "/v2/generations");
  assert.equal(r.status, 503);
  assert.equal(r.json.errorCode, "account_paused");
  assert.equal(r.headers.get("retry-after"), "7");
  const queued = await create(gov, { prefer: "respond-async" });
  assert.equal(queued.status, 202, queued.text);
  const ticket = queued.json.id;
  const st = await status(gov);
  assert.equal(st.paused.reason, "maintenance");
  assert.equal(st.queue.depth, 1);
  const creates = async () => (await sim.requests(1000)).filter((q) => q.method === "POST" && q.path === "/v2/generate").length;
  assert.equal(await creates(), 0, "nothing goes to Sync while paused");
  r = await admin(gov, `/accounts/${ACCOUNT}/resume`, { method: "POST" });
  assert.equal(r.status, 200);
  assert.equal(r.json.paused, null);
  await until("the queued job is submitted after the resume", async () => {
    const t = await govCall(gov, `/governor/v1/queue/${ticket}`);
    return t.json?.generationId;
  }, 15_000);
  assert.equal(await creates(), 1);
  assert.equal((await govCall(gov, "/v2/generations")).status, 200);
});

test("queue list, cancel one, drain; force-release a permit; the directory lists the account", async () => {
  const { gov } = await setup({ GOVERNOR_ADMIN_KEY: ADMIN, SYNC_PLAN: "hobbyist" }, { concurrency: 1, "processing-ms": 60_000 });
  const first = await create(gov);
  assert.equal(first.status, 201, first.text);
  const generation = first.json.id;
  const tickets = [];
  for (const [client, priority] of [["a", 0], ["b", 5], ["a", 1]]) {
    const q = await create(gov, { prefer: "respond-async", "x-governor-client": client, "x-governor-priority": String(priority) });
    assert.equal(q.status, 202, q.text);
    tickets.push(q.json.id);
  }
  let r = await admin(gov, `/accounts/${ACCOUNT}/queue`);
  assert.equal(r.status, 200);
  assert.equal(r.json.depth, 3);
  assert.deepEqual(r.json.jobs.map((j) => j.position), [1, 2, 3].map((p) => r.json.jobs[p - 1].position));
  for (const j of r.json.jobs) {
    assert.ok(j.ageMs >= 0 && j.status === "QUEUED" && typeof j.estimatedStartAt === "string" && j.client.startsWith("h-"));
  }
  assert.deepEqual(new Set(r.json.jobs.map((j) => j.ticket)), new Set(tickets));
  r = await admin(gov, `/accounts/${ACCOUNT}/queue/${tickets[0]}`, { method: "DELETE" });
  assert.equal(r.status, 200);
  assert.equal(r.json.status, "CANCELED");
  assert.equal((await admin(gov, `/accounts/${ACCOUNT}/queue/tk_00000000000000000000000000000000`, { method: "DELETE" })).status, 404);
  r = await admin(gov, `/accounts/${ACCOUNT}/queue`, { method: "DELETE" });
  assert.deepEqual(r.json, { cancelled: 2 });
  assert.equal((await status(gov)).queue.depth, 0);

  assert.equal((await status(gov)).concurrency.inUse, 1);
  r = await admin(gov, `/accounts/${ACCOUNT}/permits/${generation}`, { method: "DELETE" });
  assert.deepEqual(r.json, { released: 1 });
  assert.equal((await status(gov)).concurrency.inUse, 0);
  assert.equal((await admin(gov, `/accounts/${ACCOUNT}/permits/${generation}`, { method: "DELETE" })).status, 404);

  const listed = await until("the directory lists the account", async () => {
    const a = await admin(gov, "/accounts");
    return a.json?.accounts?.find((x) => x.account === ACCOUNT);
  });
  assert.equal(listed.mode, "pass-through");
  assert.ok(listed.firstSeen <= listed.lastSeen);
  assert.equal(listed.usage.permitsLimit, 1);
});

test("metrics: Prometheus text that a real parser reads, with the real counts; logs are JSON lines without secrets", async () => {
  const logs = [];
  const { gov } = await setup({ GOVERNOR_ADMIN_KEY: ADMIN, GENERATE_PER_MINUTE: 2, SYNC_PLAN: "creator" }, {}, { logs });
  assert.equal((await create(gov)).status, 201);
  assert.equal((await create(gov)).status, 201);
  assert.equal((await create(gov)).status, 429);
  for (let i = 0; i < 3; i++) assert.equal((await govCall(gov, "/v2/generations")).status, 200);
  await until("the directory lists the account", async () => (await admin(gov, "/accounts")).json?.accounts?.length === 1);
  const r = await govCall(gov, "/governor/v1/metrics", { key: null, headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const samples = parseMetrics(r.text);
  const acct = { account: ACCOUNT };
  assert.equal(sample(samples, "sync_governor_admitted_total", { ...acct, class: "generate" }), 2);
  assert.equal(sample(samples, "sync_governor_admitted_total", { ...acct, class: "other" }), 3);
  assert.equal(sample(samples, "sync_governor_refused_total", { ...acct, reason: "rate" }), 1);
  // Upstream statuses ride with the isolate's next admission: all but the last request's.
  const upstream = ["200", "201"].map((status) => sample(samples, "sync_governor_upstream_responses_total", { ...acct, status }) ?? 0);
  assert.equal(upstream[1], 2, "both creates were answered 201");
  assert.ok(upstream[0] >= 2, `the reads' 200s (the last may still wait for the next admission): ${upstream}`);
  assert.equal(sample(samples, "sync_governor_permits_limit", acct), 3);
  assert.equal(sample(samples, "sync_governor_queue_depth", acct), 0);
  assert.ok(sample(samples, "sync_governor_added_latency_seconds_count", acct) >= 4);
  assert.equal(sample(samples, "sync_governor_wait_seconds_bucket", { ...acct, kind: "held", le: "+Inf" }), 0);
  assert.equal(samples.find((s) => s.family === "sync_governor_wait_seconds")?.type, "histogram");
  // ?account= selects one; an unknown name lists nothing.
  const one = await govCall(gov, `/governor/v1/metrics?account=${ACCOUNT}`, { key: null, headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(sample(parseMetrics(one.text), "sync_governor_admitted_total", { ...acct, class: "generate" }), 2);

  await until("decision lines are logged", async () => logs.some((l) => l.includes('"event":"decision"')));
  const decisions = logs.filter((l) => l.includes('"event":"decision"')).map((l) => JSON.parse(l.slice(l.indexOf("{"))));
  assert.ok(decisions.some((d) => d.outcome === "refused" && d.reason === "rate" && d.class === "generate"));
  const admitted = decisions.find((d) => d.outcome === "admitted" && d.class === "generate");
  assert.equal(admitted.upstreamStatus, 201);
  assert.equal(admitted.account, ACCOUNT);
  assert.match(admitted.generationId, /.+/);
  for (const l of logs) {
    for (const secret of [SIM_KEY, ADMIN, "operations-test-webhook-key-0123"]) assert.ok(!l.includes(secret), `a log line leaks a secret: ${l}`);
  }
});

test("shadow mode: nothing is refused, the RateLimit fields are sent, what would have been refused is counted", async () => {
  const { sim, gov } = await setup({ GOVERNOR_MODE: "shadow", GENERATE_PER_MINUTE: 2, SYNC_PLAN: "creator" }, { concurrency: 10 });
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await create(gov));
  assert.deepEqual(answers.map((a) => a.status), [201, 201, 201, 201]);
  assert.match(answers[3].headers.get("ratelimit"), /"generate";r=0;/);
  const creates = (await sim.requests(1000)).filter((q) => q.method === "POST" && q.path === "/v2/generate");
  assert.equal(creates.length, 4, "all four reached Sync");
  const st = await status(gov);
  assert.equal(st.mode, "shadow");
  assert.equal(st.counters.wouldRefuse.rate, 2);
  assert.equal(st.counters.admitted.generate, 4);
  // respond-async is not queued in shadow mode: it goes at once.
  const q = await create(gov, { prefer: "respond-async" });
  assert.equal(q.status, 201);
});

test("load shedding: a wait that cannot be met is refused at once with the estimate; one that can is held and admitted", async () => {
  const { gov } = await setup({ GENERATE_PER_MINUTE: 1, RATE_WINDOW_MS: 3000, RATE_MARGIN_MS: 0, SYNC_PLAN: "creator" });
  assert.equal((await create(gov)).status, 201);
  const shed = await create(gov, { prefer: "wait=1" });
  assert.equal(shed.status, 429);
  assert.ok(shed.ms < 900, `answered at once, not after the wait (${shed.ms} ms)`);
  assert.ok(shed.json.retryAfterMs > 1000, `the estimate is in the answer (${shed.json.retryAfterMs} ms)`);
  const held = await create(gov, { prefer: "wait=10" });
  assert.equal(held.status, 201, held.text);
  assert.ok(held.ms > 1000);
  const st = await status(gov);
  assert.equal(st.counters.shed, 1);
  assert.equal(st.counters.held, 1);
  assert.equal(st.waits.held.count, 1);
  assert.ok(st.waits.held.p50Ms > 1000 && st.waits.held.p99Ms === st.waits.held.p50Ms);
  const s = st.series.classes.generate;
  assert.equal(s.admitted.length, 90);
  assert.equal(s.admitted.reduce((a, b) => a + b, 0), 2);
  assert.equal(s.refused.reduce((a, b) => a + b, 0), 1);
  assert.equal(s.held.reduce((a, b) => a + b, 0), 1);
});
