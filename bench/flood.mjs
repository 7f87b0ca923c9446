// Section 3: one account's Durable Object under a flood of requests it must
// refuse. The account allows `limit` requests per window; N concurrent
// clients hammer it for T seconds without waiting. Meanwhile:
//   - a polite client on the same account honours the governor's retry hint
//     (body `retryAfterMs`) and counts how often and how soon it gets in;
//   - a client on another account (another Sync key, another object) sends
//     a request every 250 ms, under its limit, and measures latency, before
//     and during the flood.
// The simulator's own counters show what reached Sync.
import { startSim, startGovernor, SIM_KEY } from "../tests/lib/harness.mjs";
import { now, sleep, pct, req, retryHint } from "./lib.mjs";

const env = (k, d) => (process.env[k] === undefined || process.env[k] === "" ? d : Number(process.env[k]));
const KEY_B = "sk-sim-bench-b";

export function params() {
  return {
    limit: env("BENCH_FLOOD_LIMIT", 5),
    windowMs: env("BENCH_FLOOD_WINDOW_MS", 1000),
    flooders: env("BENCH_FLOOD_CONCURRENCY", 32),
    seconds: env("BENCH_FLOOD_SECONDS", 6),
    calmSeconds: 2,
    otherEveryMs: 250,
    politePauseMs: 100,
    path: "/v2/generations?limit=1",
  };
}

/** Requests every `everyMs` until `until`; returns latencies and statuses. */
async function steady(url, key, everyMs, until) {
  const lat = [];
  const statuses = {};
  for (let i = 0; i < 10_000 && now() < until; i++) {
    const t = now();
    const r = await req(url, { headers: { "x-api-key": key } });
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status === 200) lat.push(r.ms);
    await sleep(everyMs - (now() - t));
  }
  return { lat, statuses };
}

export async function runFlood(P = params(), log = () => {}) {
  const sim = await startSim({ key: [SIM_KEY, KEY_B], "window-ms": P.windowMs, "other-per-minute": 1_000_000 });
  let gov;
  try {
    gov = await startGovernor({
      SYNC_API_BASE: sim.url,
      REQUESTS_PER_MINUTE: P.limit,
      RATE_WINDOW_MS: P.windowMs,
      RATE_MARGIN_MS: 0,
    });
    const url = gov.url + P.path;

    log(`section 3: calm baseline for the other account (${P.calmSeconds} s)`);
    const calm = await steady(url, KEY_B, P.otherEveryMs, now() + P.calmSeconds * 1000);
    await sleep(P.windowMs);
    const before = await sim.stats();

    log(`section 3: flood, ${P.flooders} concurrent for ${P.seconds} s at ${P.limit}/${P.windowMs} ms`);
    const t0 = now();
    const end = t0 + P.seconds * 1000;
    const flood = { total: 0, rejected: 0, admitted: 0, other: 0, lat: [] };
    const flooder = async () => {
      for (let i = 0; i < 1_000_000 && now() < end; i++) {
        const r = await req(url, { headers: { "x-api-key": SIM_KEY } });
        flood.total++;
        flood.lat.push(r.ms);
        if (r.status === 429) flood.rejected++;
        else if (r.status === 200) flood.admitted++;
        else flood.other++;
      }
    };
    const polite = { tries: 0, admitted: 0, waits: [] };
    const politeClient = async () => {
      for (let i = 0; i < 10_000 && now() < end; i++) {
        const first = now();
        for (let k = 0; k < 1_000 && now() < end; k++) {
          const r = await req(url, { headers: { "x-api-key": SIM_KEY } });
          polite.tries++;
          if (r.status === 200) {
            polite.admitted++;
            polite.waits.push(now() - first);
            break;
          }
          const hint = retryHint(r);
          await sleep(Math.min(hint ? hint.ms : 100, end - now()));
        }
        await sleep(P.politePauseMs);
      }
    };
    // The same kind of client, but it lets the governor hold its request
    // (`Prefer: wait=3`): it takes a place in the account's FIFO line.
    const held = { tries: 0, admitted: 0, waits: [] };
    const heldClient = async () => {
      for (let i = 0; i < 10_000 && now() < end - 500; i++) {
        const first = now();
        const r = await req(url, { headers: { "x-api-key": SIM_KEY, prefer: "wait=3" } });
        held.tries++;
        if (r.status === 200) {
          held.admitted++;
          held.waits.push(now() - first);
        }
        await sleep(P.politePauseMs);
      }
    };
    const [during] = await Promise.all([
      steady(url, KEY_B, P.otherEveryMs, end),
      politeClient(),
      heldClient(),
      ...Array.from({ length: P.flooders }, flooder),
    ]);
    const elapsedS = (now() - t0) / 1000;
    const after = await sim.stats();
    const a = (s, k) => s.keys[k]?.requests?.other ?? 0;
    const upstreamA = a(after, SIM_KEY) - a(before, SIM_KEY);
    const allowed = P.limit * (elapsedS * 1000 / P.windowMs);
    return {
      params: P,
      elapsedS,
      decisions: flood.total + polite.tries + held.tries,
      decisionsPerS: (flood.total + polite.tries + held.tries) / elapsedS,
      rejectedPerS: (flood.rejected + (polite.tries - polite.admitted) + (held.tries - held.admitted)) / elapsedS,
      floodLatP50: pct(flood.lat, 50),
      floodLatP99: pct(flood.lat, 99),
      floodAdmitted: flood.admitted,
      floodOther: flood.other,
      politeAdmitted: polite.admitted,
      politeTries: polite.tries,
      politeWaitP50: pct(polite.waits, 50),
      politeWaitP95: pct(polite.waits, 95),
      heldAdmitted: held.admitted,
      heldTries: held.tries,
      heldWaitP50: pct(held.waits, 50),
      heldWaitP95: pct(held.waits, 95),
      admittedPerS: (flood.admitted + polite.admitted + held.admitted) / elapsedS,
      upstreamA,
      upstreamAPerS: upstreamA / elapsedS,
      allowedPerS: allowed / elapsedS,
      upstream429: after.totals.rate_limited.other,
      otherCalm: { n: calm.lat.length, p50: pct(calm.lat, 50), p99: pct(calm.lat, 99), statuses: calm.statuses },
      otherDuring: { n: during.lat.length, p50: pct(during.lat, 50), p99: pct(during.lat, 99), statuses: during.statuses },
    };
  } finally {
    await gov?.stop();
    await sim.stop();
  }
}
