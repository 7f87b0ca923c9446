// Finding 13 of issue 10: when the account's object throws or cannot be
// reached, the Worker answers 503 JSON with Retry-After (never a 500) and
// forwards nothing. The object is replaced by one that always throws (an
// injected failure: the ACCOUNTS binding points at a second script).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startSim, startBrokenGovernor, generateBody, SIM_KEY } from "../lib/harness.mjs";

const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** The governor over an always-throwing account object, stopped after the tests. */
async function brokenGovernor(sim, vars = {}) {
  const gov = await startBrokenGovernor({
    SYNC_API_BASE: sim.url,
    GOVERNOR_WEBHOOK_KEY: "object-failure-test-key-0123456789",
    ...vars,
  });
  cleanup.push(() => gov.stop());
  return gov.url;
}

test("an account object that throws is a 503 JSON error with Retry-After, and nothing is forwarded", async () => {
  const sim = await startSim();
  cleanup.push(() => sim.stop());
  const url = await brokenGovernor(sim);
  for (const [method, path, body] of [
    ["GET", "/v2/generations", undefined],
    ["POST", "/v2/generate", JSON.stringify(generateBody())],
    ["GET", "/governor/v1/status", undefined],
  ]) {
    const r = await fetch(url + path, {
      method,
      headers: { "x-api-key": SIM_KEY, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await r.text();
    assert.equal(r.status, 503, `${method} ${path}: ${text}`);
    const json = JSON.parse(text);
    assert.equal(json.errorCode, "governor_unavailable");
    assert.ok(Number(r.headers.get("retry-after")) >= 1, "Retry-After");
    assert.ok(!text.includes(SIM_KEY), "no key in the error");
  }
  assert.equal((await sim.requests(100)).length, 0, "nothing reached Sync");
});

test("FAIL_MODE=open: with the account object failing, requests are forwarded undecided (marked), status still 503", async () => {
  const sim = await startSim();
  cleanup.push(() => sim.stop());
  const url = await brokenGovernor(sim, { FAIL_MODE: "open" });
  const send = (method, path, body) =>
    fetch(url + path, {
      method,
      headers: { "x-api-key": SIM_KEY, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(30_000),
    });
  let r = await send("GET", "/v2/generations");
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get("x-governor-decision"), "fail-open");
  r = await send("POST", "/v2/generate", JSON.stringify(generateBody()));
  assert.equal(r.status, 201, await r.clone().text());
  assert.equal(r.headers.get("x-governor-decision"), "fail-open");
  const seen = await sim.requests(100);
  assert.deepEqual(seen.map((q) => `${q.method} ${q.path}`), ["GET /v2/generations", "POST /v2/generate"]);
  // Nothing to forward for the governor's own routes: still 503.
  r = await send("GET", "/governor/v1/status");
  assert.equal(r.status, 503);
  assert.equal((await r.json()).errorCode, "governor_unavailable");
});
