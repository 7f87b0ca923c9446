#!/usr/bin/env bash
# The DST's mutation check (issue 15): build the shipped driver with one
# test-only mutant feature of governor-core at a time (each breaks one driver
# rule on purpose, see core/src/driver) and show a seed of the ordinary
# simulation that catches it. Fails if a mutant survives.
#   bash scripts/dst-mutants.sh [SEEDS] [STEPS]      (default 64 seeds x 2000 steps, debug build;
#                                                     DST_RELEASE=1 for a release build)
#   DST_SEED=S cargo test -p governor-core --features MUTANT --test dst \
#     -- --nocapture simulated_histories_keep_every_invariant    replays the catching seed
set -euo pipefail
cd "$(dirname "$0")/.."
export DST_SEEDS="${1:-64}" DST_STEPS="${2:-2000}" DST_BASE="${DST_BASE:-0}"
for mutant in mutant-drop-delivered mutant-skip-freed-dispatch; do
  printf '[dst-mutants] %s: seeds %s.. x %s steps\n' "$mutant" "$DST_BASE" "$DST_STEPS" >&2
  cargo test ${DST_RELEASE:+--release} -p governor-core --features "$mutant" --test dst -- --nocapture --test-threads=1 a_driver_mutant_is_caught
done
