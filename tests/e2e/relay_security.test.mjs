// Relay security through the real runtime (issue 10, findings 4 and 5):
// deliveries never follow redirects and are checked again when they go;
// webhookUrl spellings that reach internal hosts are refused; LOCAL_MODE
// works only on loopback and its tokens die with it; callback tokens are
// opaque, expire and survive a key rotation; a replayed signed body is
// relayed once; the status says when signatures are not checked.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSim, startGovernor, generateBody, SIM_KEY, until, rawRequest } from "../lib/harness.mjs";
import { receiver, status, drained } from "../lib/e2e.mjs";

const SECRET = "whsec_relay_security_secret";
const KEY_A = "governor-webhook-key-a-0123456789";
const KEY_B = "governor-webhook-key-b-0123456789";
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Governor vars; an `undefined` value leaves the variable unset. */
function vars(sim, extra = {}) {
  const all = {
    SYNC_API_BASE: sim.url,
    MAX_CONCURRENT_GENERATIONS: "3",
    GOVERNOR_WEBHOOK_KEY: KEY_A,
    SYNC_WEBHOOK_SECRET: SECRET,
    LOCAL_MODE: "true",
    RECONCILE_MIN_MS: "400",
    RECONCILE_MAX_MS: "1600",
    RELAY_BACKOFF_BASE_MS: "100",
    RELAY_BACKOFF_CAP_MS: "300",
    ...extra,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

async function simulator(flags = {}) {
  const sim = await startSim({ concurrency: 3, "pending-ms": 50, "processing-ms": 200, "webhook-secret": SECRET, ...flags });
  cleanup.push(() => sim.stop());
  return sim;
}

async function governor(v, opts) {
  const gov = await startGovernor(v, opts);
  let stopped = false;
  const stop = async (o) => {
    if (!stopped) {
      stopped = true;
      await gov.stop(o);
    }
  };
  cleanup.push(() => stop());
  return { gov, stop };
}

/** A loopback HTTP server at `/hook`; `answer(req)` → [status, headers]. Records every hit. */
const server = (answer) => receiver({ path: "/hook", ...(answer ? { answer } : {}) });

const api = (gov, path, init = {}) =>
  fetch(`${gov.url}${path}`, {
    ...init,
    headers: { "x-api-key": SIM_KEY, "content-type": "application/json", ...(init.headers ?? {}) },
    signal: AbortSignal.timeout(10_000),
  });
const create = (gov, extra = {}) => api(gov, "/v2/generate", { method: "POST", body: JSON.stringify(generateBody(extra)) });
const sign = (body, t = Math.floor(Date.now() / 1000)) =>
  `t=${t},v1=${createHmac("sha256", SECRET).update(`${t}.${body}`).digest("hex")}`;
const postCallback = (url, body, signature) =>
  fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...(signature ? { "sync-signature": signature } : {}) },
    signal: AbortSignal.timeout(10_000),
  });

/** Create a generation and return it with the callback URL Sync was given. */
async function createWithCallback(sim, gov, extra) {
  const res = await create(gov, extra);
  assert.equal(res.status, 201, await res.clone().text());
  const gen = await res.json();
  const seen = await (await fetch(`${sim.url}/_sim/generations/${gen.id}`)).json();
  return { gen, callback: seen.generation.webhookUrl };
}

/** The callback's path on another governor (another port, same routes). */
const on = (gov, callback) => gov.url + new URL(callback).pathname;

test("relay deliveries do not follow redirects: a 3xx is a failed attempt", async () => {
  const sim = await simulator();
  const { gov } = await governor(vars(sim));
  const target = await server();
  const hook = await server(() => [307, { location: `${target.url}?stolen=1` }]);
  await createWithCallback(sim, gov, { webhookUrl: hook.url });
  await until("an attempt at the redirecting hook", () => hook.got.length >= 1, 10_000);
  await until("the attempt is retried", () => hook.got.length >= 2, 10_000);
  // The first attempt ended before the second began: had it followed the
  // redirect, the target would have been hit by now.
  assert.equal(target.got.length, 0, "the redirect target never got the payload");
  const st = await status(gov);
  assert.equal(st.relay.delivered, 0, "a redirect is not a delivery");
  assert.equal(st.relay.pending, 1, "still pending, with backoff");
});

test("webhookUrl spellings that reach loopback or internal hosts are refused and never forwarded", async () => {
  const sim = await simulator();
  const { gov } = await governor(vars(sim));
  const port = 9; // never contacted: each is refused before anything is sent
  const refused = [
    `https://localhost./h`,
    `http://localhost.:${port}/h`,
    `https://hooks.example.com./h`,
    `https://100.64.0.1/h`,
    `https://198.18.0.1/h`,
    `https://[::ffff:127.0.0.1]/h`,
    `https://[::7f00:1]/h`,
    `https://[64:ff9b::7f00:1]/h`,
    `http://2130706433:${port}/h`,
    `http://0177.0.0.1:${port}/h`,
    `http://0x7f.1:${port}/h`,
    `http://127.1:${port}/h`,
    `https://0x0a.0.0.1/h`,
  ];
  const before = (await sim.stats()).totals.requests.generate;
  for (const url of refused) {
    const res = await create(gov, { webhookUrl: url });
    const body = await res.json();
    assert.equal(res.status, 400, `${url} → ${res.status} ${JSON.stringify(body)}`);
    assert.equal(body.errorCode, "invalid_request");
  }
  assert.equal((await sim.stats()).totals.requests.generate, before, "none reached Sync");
  // The canonical loopback spelling is still fine in local mode.
  const hook = await server();
  assert.equal((await create(gov, { webhookUrl: hook.url })).status, 201);
});

test("LOCAL_MODE is ignored unless the request's host is loopback", async () => {
  const sim = await simulator();
  const { gov } = await governor(vars(sim));
  const hook = await server();
  const body = JSON.stringify(generateBody({ webhookUrl: hook.url }));
  const headers = (host) => ({ "x-api-key": SIM_KEY, "content-type": "application/json", ...(host ? { host } : {}) });
  const deployed = await rawRequest(gov.url, "/v2/generate", { method: "POST", headers: headers("gov.example.com"), body });
  assert.equal(deployed.status, 400, deployed.text);
  assert.match(deployed.json.message, /loopback/);
  const st = await rawRequest(gov.url, "/governor/v1/status", { headers: headers("gov.example.com") });
  assert.equal(st.json.webhooks.localMode, false);
  const local = await rawRequest(gov.url, "/v2/generate", { method: "POST", headers: headers(), body });
  assert.equal(local.status, 201, local.text);
  assert.equal((await status(gov)).webhooks.localMode, true);
});

test("a token minted in local mode stops working once LOCAL_MODE is off", async () => {
  const sim = await simulator({ "processing-ms": 60_000 });
  const dir = mkdtempSync(join(tmpdir(), "relay-security-"));
  const a = await governor(vars(sim), { persistDir: dir });
  const hook = await server();
  const { gen, callback } = await createWithCallback(sim, a.gov, { webhookUrl: hook.url });
  await a.stop({ keepState: true });
  const b = await governor(vars(sim, { LOCAL_MODE: "false" }), { persistDir: dir });
  const payload = JSON.stringify({ ...gen, status: "COMPLETED" });
  const res = await postCallback(on(b.gov, callback), payload, sign(payload));
  assert.equal(res.status, 401);
  assert.match((await res.json()).message, /local mode/);
  const pending = await drained(b.gov);
  assert.equal(pending.deliveries, 0, "nothing queued for the loopback hook");
  assert.equal(hook.got.length, 0, "nothing relayed to loopback");
});

test("pending deliveries are checked again when they go: LOCAL_MODE turned off stops loopback relays", async () => {
  const sim = await simulator();
  const dir = mkdtempSync(join(tmpdir(), "relay-security-"));
  const a = await governor(vars(sim), { persistDir: dir });
  const hook = await server(() => [503, {}]);
  await createWithCallback(sim, a.gov, { webhookUrl: hook.url });
  await until("failing attempts", () => hook.got.length >= 2, 10_000);
  await a.stop({ keepState: true });
  const hits = hook.got.length;
  const b = await governor(vars(sim, { LOCAL_MODE: "false" }), { persistDir: dir });
  await until("the delivery is given up", async () => {
    const st = await status(b.gov);
    return st.relay.pending === 0 && st.relay.abandoned === 1;
  }, 10_000);
  await drained(b.gov);
  assert.equal(hook.got.length, hits, "no attempt after LOCAL_MODE went off");
});

test("status and the log say when callback signatures are not verified", async () => {
  const sim = await simulator();
  const off = await governor(vars(sim, { SYNC_WEBHOOK_SECRET: undefined }));
  assert.deepEqual((await status(off.gov)).webhooks.verification, "off");
  const on_ = await governor(vars(sim));
  assert.deepEqual((await status(on_.gov)).webhooks.verification, "on");
  const empty = await governor(vars(sim, { SYNC_WEBHOOK_SECRET: "" }));
  const r = await api(empty.gov, "/governor/v1/status");
  assert.equal(r.status, 500, "an empty secret is a configuration error");
  assert.match((await r.json()).message, /SYNC_WEBHOOK_SECRET/);
});

test("the callback token does not show the client's URL", async () => {
  const sim = await simulator({ "processing-ms": 60_000 });
  const { gov } = await governor(vars(sim));
  const hook = await server();
  const { callback } = await createWithCallback(sim, gov, { webhookUrl: `${hook.url}?tenant=acme-secret` });
  const token = callback.split("/").pop();
  for (const part of token.split(".")) {
    const text = Buffer.from(part, "base64url").toString("latin1");
    for (const leak of ["127.0.0.1", String(hook.port), "/hook", "acme-secret"]) {
      assert.ok(!text.includes(leak), `token part ${part.slice(0, 12)}… decodes to something with ${leak}`);
    }
  }
  assert.ok(!callback.includes("acme-secret"));
});

test("callback tokens expire", async () => {
  const sim = await simulator({ "processing-ms": 60_000 });
  const { gov } = await governor(vars(sim, { WEBHOOK_TOKEN_TTL_SECONDS: "1" }));
  const hook = await server();
  const { gen, callback } = await createWithCallback(sim, gov, { webhookUrl: hook.url });
  // A wait on the clock itself (the token's 1 s TTL must pass), not on a state.
  const expired = Date.now() + 2_200;
  await until("the callback token's TTL has passed", () => Date.now() >= expired, 5_000);
  const payload = JSON.stringify({ ...gen, status: "COMPLETED" });
  const res = await postCallback(callback, payload, sign(payload));
  assert.equal(res.status, 401);
  assert.match((await res.json()).message, /expired/);
  assert.equal((await status(gov)).concurrency.inUse, 1, "an expired token frees nothing");
});

test("key rotation: GOVERNOR_WEBHOOK_KEY_PREVIOUS opens tokens minted before it, and only while it is set", async () => {
  const sim = await simulator({ "processing-ms": 60_000 });
  const a = await governor(vars(sim));
  const hook = await server();
  const { gen, callback } = await createWithCallback(sim, a.gov, { webhookUrl: hook.url });
  await a.stop();
  const payload = JSON.stringify({ ...gen, status: "COMPLETED" });
  const dropped = await governor(vars(sim, { GOVERNOR_WEBHOOK_KEY: KEY_B }));
  const refused = await postCallback(on(dropped.gov, callback), payload, sign(payload));
  assert.equal(refused.status, 401, "the old key is gone");
  assert.match((await refused.json()).message, /no longer accepted/);
  const rotated = await governor(vars(sim, { GOVERNOR_WEBHOOK_KEY: KEY_B, GOVERNOR_WEBHOOK_KEY_PREVIOUS: KEY_A }));
  const ok = await postCallback(on(rotated.gov, callback), payload, sign(payload));
  assert.equal(ok.status, 200, await ok.clone().text());
  await until("relayed after the rotation", () => hook.got.length === 1);
  assert.equal(JSON.parse(hook.got[0].body).id, gen.id);
});

test("a signed webhook posted again and again is relayed once; the copies are acknowledged and counted", async () => {
  const sim = await simulator();
  const { gov } = await governor(vars(sim));
  const hook = await server();
  const { gen, callback } = await createWithCallback(sim, gov, { webhookUrl: hook.url });
  await until("the genuine relay", () => hook.got.length === 1);
  const { body, signature } = hook.got[0];
  assert.equal(JSON.parse(body).id, gen.id);
  for (let i = 0; i < 5; i++) {
    const r = await postCallback(callback, body, signature);
    assert.equal(r.status, 200, "a replay is acknowledged");
  }
  await drained(gov);
  assert.equal(hook.got.length, 1, "the client got Sync's webhook once");
  const st = await status(gov);
  assert.equal(st.relay.duplicates, 5);
  assert.equal(st.relay.delivered, 1);
});
