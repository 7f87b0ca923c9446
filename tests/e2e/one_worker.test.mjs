// One Worker (issue 16): the admin API and the metrics are the governor's
// own script. Runs the one config (wrangler.toml) under a plain
// `wrangler dev`, as an operator would, with GOVERNOR_ADMIN_KEY set as a var:
// a client's request is admitted and forwarded, the metrics and the admin
// API answer at the same URL with the admin key (401 without), and
// `wrangler deploy --dry-run` of the same config bundles it all into one
// script. No generated config file is involved.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSim, startWranglerDev, govCall, until, sha256, ROOT, SIM_KEY } from "../lib/harness.mjs";

const ADMIN = "admin-key-for-the-one-worker-test-0123";
const ACCOUNT = `k-${sha256(`sync-governor/v1/${SIM_KEY}`).slice(0, 32)}`;
const cleanup = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("a plain `wrangler dev` of wrangler.toml serves the data path, the metrics and the admin API", async () => {
  const sim = await startSim();
  cleanup.push(() => sim.stop());
  const gov = await startWranglerDev({
    SYNC_API_BASE: sim.url,
    GOVERNOR_ADMIN_KEY: ADMIN,
    GOVERNOR_WEBHOOK_KEY: "one-worker-test-webhook-key-0123",
  });
  cleanup.push(() => gov.stop());

  const read = await govCall(gov, "/v2/generations?limit=1");
  assert.equal(read.status, 200, read.text);
  assert.ok(read.headers.get("ratelimit"), "admitted by the governor, not forwarded blind");

  const bearer = { authorization: `Bearer ${ADMIN}` };
  // Without the key: 401 (the routes exist: the key is set), never forwarded to Sync.
  const before = (await sim.requests()).length;
  for (const path of ["/governor/v1/metrics", "/governor/v1/admin/accounts"]) {
    const r = await govCall(gov, path, { key: null });
    assert.equal(r.status, 401, `${path}: ${r.text}`);
  }
  assert.equal((await sim.requests()).length, before, "admin paths never reach Sync");

  // The account is announced off the hot path: wait for it in the directory.
  const listed = await until(
    "the account in the admin directory",
    async () => {
      const r = await govCall(gov, "/governor/v1/admin/accounts", { key: null, headers: bearer });
      assert.equal(r.status, 200, r.text);
      return r.json.accounts.find((a) => a.account === ACCOUNT);
    },
    30_000,
  );
  assert.equal(listed.mode, "pass-through");

  const metrics = await govCall(gov, "/governor/v1/metrics", { key: null, headers: { "x-governor-admin-key": ADMIN } });
  assert.equal(metrics.status, 200, metrics.text);
  assert.match(metrics.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.text, new RegExp(`^sync_governor_\\w+\\{[^}]*account="${ACCOUNT}"`, "m"), "a series for the account");

  const one = await govCall(gov, `/governor/v1/admin/accounts/${ACCOUNT}`, { key: null, headers: bearer });
  assert.equal(one.status, 200, one.text);
  const paused = await govCall(gov, `/governor/v1/admin/accounts/${ACCOUNT}/pause`, { method: "POST", key: null, headers: bearer, body: {} });
  assert.equal(paused.status, 200, paused.text);
  const refused = await govCall(gov, "/v2/generations?limit=1");
  assert.equal(refused.status, 503, "the admin API's pause applies to the data path of the same script");
  assert.equal(refused.json.errorCode, "account_paused");
  const resumed = await govCall(gov, `/governor/v1/admin/accounts/${ACCOUNT}/resume`, { method: "POST", key: null, headers: bearer });
  assert.equal(resumed.status, 200, resumed.text);
  assert.equal((await govCall(gov, "/v2/generations?limit=1")).status, 200);

  for (const f of ["wrangler.ops.toml", "wrangler.dev.toml", "wrangler.ops.dev.toml", "build-ops"]) {
    assert.ok(!existsSync(join(ROOT, f)), `${f}: one config, nothing generated`);
  }
});

test("`wrangler deploy --dry-run` of the one config bundles one script holding the admin API and the metrics", () => {
  const out = mkdtempSync(join(tmpdir(), "sync-governor-one-size-"));
  cleanup.push(() => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync("bash", [join(ROOT, "scripts", "size.sh"), out], { encoding: "utf8", timeout: 200_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const files = readdirSync(join(out, "dist"));
  const wasm = files.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one wasm module: ${files}`);
  const bytes = readFileSync(join(out, "dist", wasm[0]));
  // Strings only the operations code holds: the admin actions' log names and the metrics' content type.
  for (const s of ["drain_queue", "release_permit", "text/plain; version=0.0.4"]) {
    assert.ok(bytes.includes(Buffer.from(s)), `the bundle holds the operations code (${s})`);
  }
  assert.ok(!readFileSync(join(out, "wrangler.toml"), "utf8").includes("[[services]]"), "no service binding to a second script");
});
