// Shared helpers of the end-to-end tests, on top of the harness: one setup
// (simulator + governor, stopped after the file), one webhook receiver, the
// common calls, and the two ways a test waits — `waitFor` (a condition with
// a deadline) and `drained` (the governor says nothing more is due before a
// given time: the probe to read before a negative assertion, instead of
// waiting out a quiet period).
import { after } from "node:test";
import { createServer } from "node:http";
import { startSim, startGovernor, generateBody, govCall, until } from "./harness.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Run `fn` after the file's tests (last registered, first run). */
export function defer(fn) {
  cleanups.push(fn);
}

/**
 * The simulator (`simFlags`: its CLI flags) and the governor in workerd
 * pointed at it (`vars`: wrangler vars; `opts`: startGovernor's options),
 * both stopped after the file's tests. Returns { sim, gov }.
 */
export async function setup(simFlags = {}, vars = {}, opts = {}) {
  const sim = await startSim(simFlags);
  defer(() => sim.stop());
  const gov = await startGovernor({ SYNC_API_BASE: sim.url, ...vars }, opts);
  defer(() => gov.stop());
  return { sim, gov };
}

/**
 * A loopback HTTP server standing for a client's webhook URL. `answer(req,
 * n)` gives [status, headers] for the n-th request (default 204);
 * `failFirst` answers 503 to that many first requests (not recorded).
 * `got`: one { method, path, at, headers, body (Buffer), text, json,
 * signature, type } per recorded request.
 */
export async function receiver({ answer = () => [204, {}], failFirst = 0, path = "" } = {}) {
  const got = [];
  let failures = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (failures < failFirst) {
        failures++;
        res.writeHead(503).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const text = body.toString("utf8");
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {}
      got.push({
        method: req.method,
        path: req.url,
        at: Date.now(),
        headers: req.headers,
        body,
        text,
        json,
        signature: req.headers["sync-signature"],
        type: req.headers["content-type"],
      });
      const [status, headers] = answer(req, got.length);
      res.writeHead(status, headers).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  defer(() => new Promise((r) => server.close(r)));
  const port = server.address().port;
  return { url: `http://127.0.0.1:${port}${path}`, port, got, failures: () => failures };
}

/** `POST /v2/generate` with a minimal body (`extra` merged in), as the simulator's client. */
export const create = (gov, extra = {}, headers = {}) =>
  govCall(gov, "/v2/generate", { method: "POST", body: generateBody(extra), headers });

/** The account's `GET /governor/v1/status` view. */
export const status = async (gov, key) => (await govCall(gov, "/governor/v1/status", key === undefined ? {} : { key })).json;

/**
 * Wait until `condition()` (sync or async) is truthy and return its value;
 * fail with `what` after `deadlineMs`. Every wait of a test is one of these.
 */
export const waitFor = (what, condition, deadlineMs = 10_000) => until(what, condition, deadlineMs);

/**
 * Wait until the governor reports that nothing is pending for `forMs`: no
 * relay delivery or queued submission running or due within `forMs` (with
 * `listings`, no reconciliation listing either), read from the status
 * view's `pending` (core/src/operations/drained.rs). Once it holds, nothing the
 * governor does before then can change what a negative assertion reads.
 * Returns the `pending` view.
 */
export async function drained(gov, { forMs = 5_000, listings = false, deadlineMs = 15_000, key } = {}) {
  const quiet = (next) => next === null || next > forMs;
  return waitFor(
    `the governor drained for ${forMs} ms`,
    async () => {
      const p = (await status(gov, key)).pending;
      const ok = quiet(p.nextDeliveryInMs) && quiet(p.nextSubmissionInMs) && (!listings || quiet(p.nextListingInMs));
      return ok && p;
    },
    deadlineMs,
  );
}

/**
 * Wait until the simulator has sent every webhook it scheduled (delays,
 * reordering and duplicates included) and each got its answer.
 */
export const simDrained = (sim, deadlineMs = 15_000) =>
  waitFor(
    "the simulator sent every webhook it scheduled",
    async () => {
      const w = (await sim.stats()).webhooks;
      return w.delivered + w.failed === w.scheduled - w.dropped + w.duplicated;
    },
    deadlineMs,
  );
