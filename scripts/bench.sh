#!/usr/bin/env bash
# Benchmarks the governor and writes BENCHMARKS.md (issue 6). One run, a few
# minutes on a 2-core machine, loopback only, every loop bounded:
#   1. strategies: client backoff vs the governor (Retry-After, queue)
#   2. overhead: simulator direct vs a bare pass-through Worker vs a JS
#      Durable Object limiter (bench/peer.mjs) vs the governor, at
#      concurrency 1 and 8, plus a breakdown of where the time goes
#      (BENCH_OVERHEAD_CONCURRENCY=1,8, BENCH_OVERHEAD_ROUNDS, ..._PER_ROUND)
#   3. flood: one account's Durable Object refusing a flood
#   4. startup and size: `wrangler check startup` (bench/startup.mjs, beside a
#      trivial JS Worker) and the wasm and gzip sizes from `wrangler deploy --dry-run`
#   5. core: criterion microbenchmark of the admission core
#   6. growth: an admitted request's latency on accounts holding 0 / 1,000 /
#      10,000 idempotency records and 0 / 100 / 1,000 waiting jobs, side by
#      side in one governor (bench/growth.mjs; BENCH_GROWTH_* knobs)
#   7. modes: what shadow mode, metrics and decision logs cost on the
#      admission path: an admitted read and create in enforce mode with
#      LOG_LEVEL=off (baseline), a second identical workerd (A/A control:
#      the noise), LOG_LEVEL=info, GOVERNOR_MODE=shadow, and the release
#      before the operations features (BENCH_MODES_BASE_COMMIT, default
#      87718ec, built once by scripts/build-base.sh into its own directory,
#      cached), each its own workerd, side by side in interleaved rounds
#      (bench/modes.mjs; BENCH_MODES_* knobs)
#   8. shares: weighted shares (1:2:4 on a cap of 7) and a greedy client vs
#      a light one, this build (weighted fair queueing) beside the release
#      before it (BENCH_SHARES_BASE_COMMIT, default fc0d7ff: round-robin,
#      built by scripts/build-base.sh), and admission latency with
#      CLIENT_LIMITS configured vs without (bench/shares.mjs)
# Knobs (environment): BENCH_SECTIONS=1,2,3,6,7,8 (load sections to run),
# BENCH_CLIENTS, BENCH_JOBS, BENCH_CAP, ... (see bench/*.mjs params()),
# BENCH_SKIP_SETUP=1, BENCH_SKIP_BUILD=1, BENCH_OUT (default BENCHMARKS.md),
# BENCH_WORK=<dir> (keep the raw results and logs there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

export BENCH_STARTED=$(date +%s)
export BENCH_COMMAND="bash scripts/bench.sh${*:+ $*}"
export BENCH_LOAD=$(cut -d' ' -f1 /proc/loadavg)
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
if [ -n "${BENCH_WORK:-}" ]; then
  WORK=$BENCH_WORK; mkdir -p "$WORK"  # kept: raw results, logs
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/sync-governor-bench.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ "${BENCH_SKIP_SETUP:-}" != 1 ]; then
  say "setup"
  bash scripts/setup.sh
fi
if [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then
  say "building the Worker and the simulator"
  bash scripts/build.sh >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
  # The Rust floor fixture for section 2 (bench/floor): skipped there if this fails.
  bash scripts/build-floor.sh >"$WORK/build-floor.log" 2>&1 || say "the Rust floor fixture did not build; section 2 runs without it"
  cargo build --release -p sync-sim --quiet
  case ",${BENCH_SECTIONS:-7,8}," in
    *,8,*)
      say "building the release before the shares work for section 8 (cached after the first time)"
      bash scripts/build-base.sh "${BENCH_SHARES_BASE_COMMIT:-fc0d7ff}" >"$WORK/build-base-shares.txt" 2>"$WORK/build-base-shares.log" ||
        { tail -20 "$WORK/build-base-shares.log" >&2; say "that build failed; section 8 runs without round-robin"; }
      ;;
  esac
  case ",${BENCH_SECTIONS:-7}," in
    *,7,*)
      say "building the release before the operations features for section 7 (cached after the first time)"
      bash scripts/build-base.sh >"$WORK/build-base.txt" 2>"$WORK/build-base.log" ||
        { tail -20 "$WORK/build-base.log" >&2; say "that build failed; section 7 runs without it"; }
      ;;
  esac
fi

say "section 5: criterion microbenchmark of the admission core"
rm -rf "$TARGET_DIR"/criterion/admit_*
timeout 600 cargo bench --quiet -p governor-core --bench admission -- \
  --warm-up-time 0.5 --measurement-time 2 --noplot >"$WORK/criterion.log" 2>&1 ||
  { say "criterion failed (see below); continuing"; tail -20 "$WORK/criterion.log" >&2; }
echo "$TARGET_DIR/criterion" >"$WORK/criterion.dir"

say "section 4: startup and size (wrangler check startup, wrangler deploy --dry-run; no network)"
# scripts/startup.sh keeps startup.json, scripts/size.sh size.txt and
# wasm.bytes in $WORK for the report; a figure over its gate is reported
# there, not a reason to stop the bench.
bash scripts/startup.sh "$WORK" >&2 || say "startup: over the gate or the measurement failed; continuing"
bash scripts/size.sh "$WORK" >&2 || say "size: over the sanity gate or the dry run failed; continuing"

say "sections 1-3, 6-8: load benchmarks (simulator + workerd on loopback)"
timeout 1200 node bench/run.mjs "$WORK/results.json" ||
  say "load benchmarks exited with an error; the report shows what was measured"

node bench/report.mjs "$WORK" "$OUT"
say "done in $(( $(date +%s) - BENCH_STARTED )) s: $OUT"
