// Cost budgets and the job ledger, in workerd against the simulator: a
// create is estimated by Sync (POST /v2/analyze/cost), reserved in the turn
// that takes its permit, settled at outputDuration x PRICES when Sync's
// webhook reports it; a budget that cannot cover the next estimate refuses
// with 429 budget_exhausted and Retry-After at its UTC renewal; the ledger's
// settled costs add up to what the budgets consumed; concurrent creates
// overspend at most by the estimate error of what is in flight.
import { test } from "node:test";
import assert from "node:assert/strict";
import { until, govCall } from "../lib/harness.mjs";
import { setupSpend, costedCreate as create, PRICE } from "../lib/spend.mjs";

const MOBILE = "ck-mobile-0123456789";
const WEB = "ck-web-0123456789abc";

const setup = (vars = {}, simFlags = {}) =>
  setupSpend(
    { mobile: MOBILE, web: WEB },
    {
      GENERATE_PER_MINUTE: "10000",
      REQUESTS_PER_MINUTE: "100000",
      GOVERNOR_WEBHOOK_KEY: "governor-webhook-key-for-tests",
      ...vars,
    },
    simFlags,
  );
const status = async (gov, key = MOBILE) => (await govCall(gov, "/governor/v1/status", { key })).json;
const ledgerRows = async (gov, key, query = "") => {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < 50; page++) {
    const q = [query, "limit=7", cursor ? `cursor=${cursor}` : ""].filter(Boolean).join("&");
    const r = await govCall(gov, `/governor/v1/ledger?${q}`, { key });
    assert.equal(r.status, 200, r.text);
    rows.push(...r.json.rows);
    cursor = r.json.nextCursor;
    if (!cursor) return rows;
  }
  throw new Error("ledger paging did not end");
};
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const idle = (gov) =>
  until("every job settled", async () => {
    const s = await status(gov);
    return s.costs.ledger.open === 0 && s.costs.account.reservedUsd === 0 && s;
  }, 30_000);
const secondsToMidnightUtc = () => {
  const now = Date.now();
  return (Math.floor(now / 86_400_000) + 1) * 86_400_000 - now;
};

test("budgets: refusals at the right moment, Retry-After at the renewal, the ledger adds up", async () => {
  // The account may spend 2.00 a day, the mobile client 1.00.
  // Permits are not what binds here (budgets are): 20 of them, so no create
  // waits on an earlier one's end, however fast the creates come.
  const { sim, gov } = await setup(
    {
      BUDGET_USD_PER_DAY: "2",
      CLIENT_LIMITS: JSON.stringify({ acme: { mobile: { usdPerDay: 1 } } }),
      MAX_CONCURRENT_GENERATIONS: "20",
    },
    { concurrency: 20 },
  );
  // Estimates of 3..7 s of output: 0.12 .. 0.28 each.
  const secs = [3, 4, 5, 6, 7];
  const admitted = [];
  let refusal;
  for (let i = 0; i < 10 && !refusal; i++) {
    const r = await create(gov, MOBILE, secs[i % 5], i);
    if (r.status === 429) refusal = { r, before: sum(admitted.map((s) => s * PRICE)) };
    else {
      assert.equal(r.status, 201, r.text);
      admitted.push(secs[i % 5]);
    }
  }
  // 3+4+5+6+7 = 25 s = 1.00 exactly: all five fit; the sixth (3 s, 0.12) does not.
  assert.deepEqual(admitted, [3, 4, 5, 6, 7]);
  assert.ok(refusal, "the client's budget refused");
  assert.equal(refusal.r.json.errorCode, "budget_exhausted", refusal.r.text);
  const retry = Number(refusal.r.headers.get("retry-after"));
  const expected = Math.ceil(secondsToMidnightUtc() / 1000);
  assert.ok(Math.abs(retry - expected) <= 3, `Retry-After ${retry} s, midnight UTC in ${expected} s`);
  assert.match(refusal.r.json.message, /client_budget\.usd_per_day/);
  // The web client spends the account's other 1.00, then the account's budget refuses.
  let webAdmitted = 0;
  let accountRefusal;
  for (let i = 0; i < 10 && !accountRefusal; i++) {
    const r = await create(gov, WEB, 5, 100 + i);
    if (r.status === 429) accountRefusal = r;
    else (assert.equal(r.status, 201, r.text), webAdmitted++);
  }
  assert.equal(webAdmitted, 5);
  assert.match(accountRefusal.json.message, /budget\.usd_per_day/);
  assert.ok(Math.abs(Number(accountRefusal.headers.get("retry-after")) - expected) <= 3);

  const s = await idle(gov);
  // The ledger: one row per job, each client sees its own.
  const mobile = await ledgerRows(gov, MOBILE);
  const web = await ledgerRows(gov, WEB);
  assert.equal(mobile.length, 5);
  assert.ok(mobile.every((r) => r.client === "mobile" && r.status === "COMPLETED" && r.estimateSource === "sync"));
  assert.equal(web.length, 5);
  const forbidden = await govCall(gov, "/governor/v1/ledger?client=web", { key: MOBILE });
  assert.equal(forbidden.status, 403);
  // Settled = Sync's outputDuration x price, and the sums are what the budgets consumed.
  const sim_ = await sim.requests(1000);
  assert.ok(sim_.some((r) => r.path === "/v2/analyze/cost"), "Sync's estimate was asked");
  const mobileSettled = sum(mobile.map((r) => r.settledMicroUsd));
  const webSettled = sum(web.map((r) => r.settledMicroUsd));
  const mobileSpend = s.costs.clients.find((c) => c.client === "mobile");
  assert.equal(mobileSettled, mobileSpend.dayMicroUsd);
  assert.equal(mobileSettled + webSettled, s.costs.account.dayMicroUsd);
  assert.equal(mobileSettled, 1_000_000);
  for (const r of [...mobile, ...web]) assert.equal(r.settledMicroUsd, Math.round(r.outputDuration * PRICE * 1e6));
  console.log(
    `budgets: mobile settled ${mobileSettled / 1e6} of 1.00, account ${(mobileSettled + webSettled) / 1e6} of 2.00; ` +
      `Retry-After ${retry} s (midnight UTC in ${expected} s)`,
  );
  // Hostile ledger queries: clear JSON 400s.
  for (const q of ["since=yesterday", "limit=0", "format=xml", "cursor=abc", "nope=1", "since=1&since=2", "client=%3Cscript%3E"]) {
    const r = await govCall(gov, `/governor/v1/ledger?${q}`, { key: WEB });
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.equal(r.json.errorCode, "invalid_request");
    assert.ok(!r.text.includes("<script>"));
  }
  const csv = await govCall(gov, "/governor/v1/ledger?format=csv", { key: WEB });
  assert.match(csv.headers.get("content-type"), /text\/csv/);
  assert.equal(csv.text.trim().split("\r\n").length, 6);
  const nd = await govCall(gov, "/governor/v1/ledger?format=ndjson&limit=2", { key: WEB });
  assert.equal(nd.text.trim().split("\n").length, 2);
  assert.ok(nd.headers.get("ledger-next-cursor"));
});

test("budgets: concurrent creates overspend at most the estimate error of what is in flight", async () => {
  // Worst case: everything the budget admits is in flight at once (cap 12,
  // 1.5 s jobs), and Sync's estimates are 20 % low (+-10 %): actual <= 1.3 x
  // estimate, e = 0.3. Documented bound: settled <= limit + e x reserved at
  // the last admission <= (1 + e) x limit.
  const LIMIT = 2;
  const E = 0.3;
  const { sim, gov } = await setup(
    { BUDGET_USD_PER_DAY: String(LIMIT), MAX_CONCURRENT_GENERATIONS: "12" },
    { concurrency: 12, "processing-ms": 1500 },
  );
  await sim.configure({ estimate_bias: 0.2, estimate_error: 0.1 });
  // 40 concurrent creates of 5 s (0.20 estimated each) from two clients.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => create(gov, i % 2 ? MOBILE : WEB, 5, 1000 + i)));
  const codes = results.map((r) => r.status);
  const ok = codes.filter((c) => c === 201).length;
  assert.ok(results.every((r) => r.status === 201 || r.json?.errorCode === "budget_exhausted"), codes.join(","));
  const inFlight = await status(gov);
  const reservedAtLast = inFlight.costs.account.reservedUsd;
  const s = await idle(gov);
  const rows = [...(await ledgerRows(gov, MOBILE)), ...(await ledgerRows(gov, WEB))];
  assert.equal(rows.length, ok);
  const settled = sum(rows.map((r) => r.settledMicroUsd)) / 1e6;
  const estimated = sum(rows.map((r) => r.estimatedMicroUsd)) / 1e6;
  // What Sync would bill: its outputDuration of every generation x price.
  const truth = sum(rows.map((r) => r.outputDuration * PRICE));
  assert.ok(Math.abs(settled - truth) < 1e-6, `ledger ${settled} vs Sync ${truth}`);
  assert.equal(Math.round(settled * 1e6), s.costs.account.dayMicroUsd);
  assert.ok(estimated <= LIMIT + 1e-9, `estimates admitted ${estimated} over the limit`);
  const bound = LIMIT + E * estimated;
  assert.ok(settled <= bound + 1e-9, `settled ${settled} over the bound ${bound}`);
  assert.ok(settled > LIMIT, "the worst case was reached (Sync's low estimates overspent)");
  console.log(
    `overshoot: ${ok} of 40 admitted (reserved in flight ${reservedAtLast.toFixed(4)}), estimated ${estimated.toFixed(4)}, ` +
      `settled ${settled.toFixed(4)} on a ${LIMIT} budget: overshoot ${(settled - LIMIT).toFixed(4)} ` +
      `(${(((settled - LIMIT) / LIMIT) * 100).toFixed(1)} %), documented bound e x reserved = ${(E * estimated).toFixed(4)}`,
  );
});

const ADMIN_KEY = "budgets-admin-key-0123456789abcdef";
const admin = (gov, method, path, body) =>
  govCall(gov, `/governor/v1/admin/accounts/a-acme${path}`, { method, key: null, body, headers: { "x-governor-admin-key": ADMIN_KEY } });

test("budgets: operator overrides reach admission (a client's usdPerDay, the account's budget); the admin key reads every client's ledger rows", async () => {
  // The account's var budget makes the Worker ask Sync for estimates (5 s = 0.20).
  // The web client's monthly budget is CLIENT_LIMITS' (0.60: three jobs).
  const { gov } = await setup({
    BUDGET_USD_PER_DAY: "100",
    GOVERNOR_ADMIN_KEY: ADMIN_KEY,
    CLIENT_LIMITS: JSON.stringify({ acme: { web: { usdPerMonth: 0.6 } } }),
  });
  const set = await admin(gov, "PUT", "/clients/mobile/limits", { usdPerDay: 0.3 });
  assert.equal(set.status, 200, set.text);
  assert.equal(set.json.client.sources.usdPerDay, "override");
  assert.equal((await create(gov, MOBILE, 5, 1)).status, 201);
  const refused = await create(gov, MOBILE, 5, 2);
  assert.equal(refused.status, 429, `the client's override did not bind: ${refused.text}`);
  assert.equal(refused.json.errorCode, "budget_exhausted");
  assert.match(refused.json.message, /client_budget\.usd_per_day/);
  assert.equal((await create(gov, WEB, 5, 3)).status, 201, "another client still passes");
  // A job Sync fails (its input URL says so to the simulator): its reservation is released.
  assert.equal((await create(gov, WEB, 5, "fail-1")).status, 201);
  // The account's budget, overridden below what is spent (0.40) plus one more.
  const before = (await status(gov)).costs.budgets.find((b) => b.period === "day");
  assert.deepEqual([before.limitUsd, before.source], [100, "var"]);
  const budget = await admin(gov, "PUT", "/budget", { usdPerDay: 0.5 });
  assert.equal(budget.status, 200, budget.text);
  assert.equal(budget.json.costs.budgets.find((b) => b.period === "day").limitUsd, 0.5);
  const shown = (await status(gov)).costs.budgets.find((b) => b.period === "day");
  assert.deepEqual([shown.limitUsd, shown.source], [0.5, "override"], "status shows the override and its source");
  // The override outlives a restart of the runtime (persisted with the account).
  await idle(gov);
  await gov.restart();
  const kept = (await status(gov)).costs.budgets.find((b) => b.period === "day");
  assert.deepEqual([kept.limitUsd, kept.source], [0.5, "override"]);
  const accountRefused = await create(gov, WEB, 5, 4);
  assert.equal(accountRefused.status, 429, accountRefused.text);
  assert.match(accountRefused.json.message, /(^|[^_])budget\.usd_per_day/);
  for (const bad of [{ usdPerDay: -1 }, { usdPerWeek: 1 }, "[]"]) {
    const r = await admin(gov, "PUT", "/budget", bad);
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.status} ${r.text}`);
  }
  assert.equal((await admin(gov, "DELETE", "/budget")).status, 200);
  assert.equal((await create(gov, WEB, 5, 5)).status, 201, "back to the var's 100");
  assert.equal((await create(gov, WEB, 5, 6)).status, 201, "0.60 of the web client's 0.60 a month");
  const monthly = await create(gov, WEB, 5, 7);
  assert.equal(monthly.status, 429, `CLIENT_LIMITS usdPerMonth did not bind: ${monthly.text}`);
  assert.match(monthly.json.message, /client_budget\.usd_per_month/);
  const d = new Date();
  const nextMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  const wantRetry = Math.ceil((nextMonth - Date.now()) / 1000);
  assert.ok(Math.abs(Number(monthly.headers.get("retry-after")) - wantRetry) <= 3, `Retry-After ${monthly.headers.get("retry-after")} s, next month in ${wantRetry} s`);
  await idle(gov);
  // The admin key: every client's rows; client= filters; a client key: its own.
  const all = await admin(gov, "GET", "/ledger?limit=100");
  assert.equal(all.status, 200, all.text);
  const clients = all.json.rows.map((r) => r.client).sort();
  assert.deepEqual([...new Set(clients)], ["mobile", "web"], JSON.stringify(clients));
  const web = await admin(gov, "GET", "/ledger?client=web&format=ndjson");
  assert.equal(web.status, 200, web.text);
  const webRows = web.text.trim().split("\n").map((l) => JSON.parse(l));
  const failed = webRows.filter((r) => r.status === "FAILED");
  assert.equal(failed.length, 1, web.text);
  assert.deepEqual([failed[0].estimatedMicroUsd, failed[0].settledMicroUsd, failed[0].settledFrom], [200_000, 0, "released"]);
  assert.ok(webRows.length >= 2 && webRows.every((r) => r.client === "web"), web.text);
  assert.equal((await admin(gov, "GET", "/ledger?since=yesterday")).status, 400);
  const own = await ledgerRows(gov, MOBILE);
  assert.ok(own.length >= 1 && own.every((r) => r.client === "mobile"));
  const noKey = await govCall(gov, "/governor/v1/admin/accounts/a-acme/ledger", { key: MOBILE });
  assert.equal(noKey.status, 401, "a client key is not the admin key");
  // The same view on the client's path: the admin key with account=, paged.
  const adminRows = [];
  let cursor = null;
  for (let page = 0; page < 20; page++) {
    const q = ["account=a-acme", "limit=2", cursor ? `cursor=${cursor}` : ""].filter(Boolean).join("&");
    const r = await govCall(gov, `/governor/v1/ledger?${q}`, { key: null, headers: { "x-governor-admin-key": ADMIN_KEY } });
    assert.equal(r.status, 200, r.text);
    adminRows.push(...r.json.rows);
    cursor = r.json.nextCursor;
    if (!cursor) break;
  }
  assert.deepEqual(adminRows.map((r) => r.id), all.json.rows.map((r) => r.id), "every client's rows, page by page");
  const csv = await govCall(gov, "/governor/v1/ledger?account=a-acme&client=mobile&format=csv", { key: null, headers: { "x-governor-admin-key": ADMIN_KEY } });
  assert.equal(csv.status, 200, csv.text);
  assert.equal(csv.text.trim().split("\r\n").length, 1 + own.length, csv.text);
  const asClient = await govCall(gov, "/governor/v1/ledger?account=a-acme", { key: MOBILE });
  assert.equal(asClient.status, 401, `account= is the admin key's: ${asClient.text}`);
  const wrongAdmin = await govCall(gov, "/governor/v1/ledger?account=a-acme", { key: null, headers: { "x-governor-admin-key": "not-the-admin-key-0123456789" } });
  assert.equal(wrongAdmin.status, 401);
  for (const q of ["", "account=", "account=acme", "account=a-acme&account=a-acme", "account=a-acme&nope=1"]) {
    const r = await govCall(gov, `/governor/v1/ledger?${q}`, { key: null, headers: { "x-governor-admin-key": ADMIN_KEY } });
    assert.equal(r.status, 400, `${q}: ${r.status} ${r.text}`);
  }
  // Spend per client in the scrape, in USD, equal to what the ledger settled.
  const scrape = await govCall(gov, "/governor/v1/metrics", { key: null, headers: { "x-governor-admin-key": ADMIN_KEY } });
  assert.equal(scrape.status, 200, scrape.text.slice(0, 300));
  const gauge = (client) =>
    Number(scrape.text.match(new RegExp(`sync_governor_client_spend_usd\\{account="a-acme",client="${client}",period="day",state="settled"\\} ([0-9.]+)`))?.[1]);
  const settledOf = (client) => sum(all.json.rows.filter((r) => r.client === client).map((r) => r.settledMicroUsd ?? 0)) / 1e6;
  assert.equal(gauge("mobile"), settledOf("mobile"), scrape.text.split("\n").filter((l) => l.includes("spend")).join("\n"));
  assert.equal(gauge("web"), settledOf("web"));
  assert.match(scrape.text, /sync_governor_budget_usd\{account="a-acme",period="day"\} 100\n/);
});
