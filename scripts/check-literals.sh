#!/usr/bin/env bash
# Gate: statuses, rate classes and ids are types, not strings.
#
# 1. Spellings. A status or class is spelled in its (de)serialiser only —
#    core/src/lifecycle/status.rs (GenerationStatus, TicketStatus,
#    BatchStatus) and core/src/rates/class.rs (RateClass) — so no other
#    production file of the core (core/src) or the Worker (src/) holds one as
#    a string literal. Neither does a ticket id's shape (`tk_`): it is made
#    and checked in core/src/ids.rs only.
#    Not production code, skipped: comments, an inline
#    `#[cfg(test)] mod … { … }` at a file's end and a module's own
#    `tests.rs` (wire bodies as test data).
# 2. sim/ is Sync's simulator, not the governor: it speaks the wire with
#    its own spellings (sim/src/generation.rs, sim/src/batch.rs,
#    sim/src/limits.rs), which are Sync's, not the core's, and are fine
#    there. That stays honest only while sim/ does not use the core: the
#    gate fails if sim/ ever depends on governor-core (then its uses of the
#    core's statuses must be typed and this gate extended to it).
# Run alone: bash scripts/check-literals.sh (exit 1 and the offending lines).
set -euo pipefail
cd "$(dirname "$0")/.."
# A module's own tests.rs, declared `#[cfg(test)] mod tests;` by its parent
# (a/b.rs or a/b/mod.rs for a/b/tests.rs): test code. Any other is production.
is_test_module() {
  case "$1" in */tests.rs) ;; *) return 1 ;; esac
  local dir=${1%/tests.rs} p
  for p in "$dir.rs" "$dir/mod.rs" "$dir/lib.rs"; do
    [ -f "$p" ] && tr '\n' ' ' <"$p" | grep -Eq '#\[cfg\(test\)\][[:space:]]*mod[[:space:]]+tests[[:space:]]*;' && return 0
  done
  return 1
}
statuses='PENDING|PROCESSING|COMPLETED|FAILED|REJECTED|CANCELED|CANCELLED|TIMED_OUT|JOBS_CREATED|QUEUED|SUBMITTING|SUBMITTED|WAITING_FOR_BATCH|BATCHED'
literals="\"($statuses|generate|other)\"|\"tk_"
found=$(
  git ls-files -co --exclude-standard 'core/src/*.rs' 'src/*.rs' \
    | grep -v -x -e core/src/lifecycle/status.rs -e core/src/rates/class.rs -e core/src/ids.rs \
    | while read -r f; do [ -f "$f" ] && ! is_test_module "$f" && echo "$f"; done \
    | while read -r f; do
        awk -v f="$f" '
          prev ~ /^#\[cfg\(test\)\]/ && $0 ~ /^(pub(\(crate\))? )?mod [A-Za-z_0-9]+ *\{/ { exit }
          { prev = $0 }
          /^[[:space:]]*\/\// { next }
          { print f ":" FNR ": " $0 }' "$f"
      done | grep -E "$literals" || true
)
status=0
if [ -n "$found" ]; then
  echo "status, rate class or ticket id shape spelled as a string outside core/src/lifecycle/status.rs, core/src/rates/class.rs and core/src/ids.rs:" >&2
  echo "$found" >&2
  status=1
fi
if grep -q 'governor-core' sim/Cargo.toml || grep -rq 'governor_core' sim/src; then
  echo "sim/ now uses governor-core: its uses of the core's statuses and classes must be typed; extend this gate to sim/." >&2
  status=1
fi
exit "$status"
