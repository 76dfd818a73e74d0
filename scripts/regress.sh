#!/usr/bin/env bash
# A performance regression run: two builds of the server measured alternately on this machine
# in the same minutes, then compared pair by pair (`ringmcp-load compare`).
#
# Usage: scripts/regress.sh BASE NEW
#   BASE, NEW   a git revision (HEAD~1, a tag, a commit id) or the path of a server binary (or
#               of a script that execs one). A revision is built once into .cache/regress/bin/
#               <commit>/ringmcp: the checkout itself when it is that commit with no changes,
#               else a temporary worktree with its own target folder (.cache/regress/target,
#               kept, so the dependencies are built only the first time).
#
# For each of REGRESS_PAIRS pairs and each scenario, scripts/bench.sh runs the scenario
# against one build and then the other, a fresh server each time, pinned as bench.sh pins;
# the order alternates (base first in odd pairs, new first in even ones), so a drift of the
# machine weighs on both sides. Both sides are driven by the same load generator, this
# checkout's. Then, per scenario, `ringmcp-load compare` prints the verdict table (p50, p99,
# p99.9, the median per-second p99, server busy per request, server bytes and heap in use per
# connection, errors: docs/benchmarks.md, "Comparing two builds"), and writes the A/B page (SCENARIO/
# report.html: both builds' runs overlaid, the verdict table on top); the last lines give one
# verdict per scenario.
#
# Exit status: 0 no regression detected, 1 a regression in some scenario, 2 a run or a build
# failed.
#
# Env (defaults in brackets):
#   REGRESS_PAIRS [5]         pairs of runs per scenario (the interval needs at least 2)
#   REGRESS_SCENARIOS ["ws-mcp http-mcp idle-hold-ws"]  bench.sh scenarios
#   REGRESS_THRESHOLD [10]    the smallest change that counts, percent
#   REGRESS_RESULTS [results/regress-<timestamp>]  where the runs and comparisons go
#   BENCH_*                   passed to every bench.sh run (BENCH_CONNECTIONS, BENCH_DURATION,
#                             BENCH_WS_RATE, ...: scripts/bench.sh); BENCH_PEER must be ringmcp
# Quick run: BENCH_CONNECTIONS=200 BENCH_DURATION=5 BENCH_WS_RATE=5000 BENCH_HTTP_RATE=2000 \
#            REGRESS_PAIRS=3 scripts/regress.sh HEAD~1 HEAD
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

(( $# == 2 )) || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
PAIRS=${REGRESS_PAIRS:-5}
SCENARIOS=${REGRESS_SCENARIOS:-"ws-mcp http-mcp idle-hold-ws"}
THRESHOLD=${REGRESS_THRESHOLD:-10}
OUT=${REGRESS_RESULTS:-$REPO_ROOT/results/regress-$(date +%Y%m%d-%H%M%S)}
[[ "$PAIRS" =~ ^[1-9][0-9]*$ ]] || { log "REGRESS_PAIRS must be a whole number above 0"; exit 2; }
[[ "${BENCH_PEER:-ringmcp}" == ringmcp ]] || { log "regress.sh compares ringmcp builds: unset BENCH_PEER"; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
BIN_CACHE="$CACHE_DIR/regress/bin"

# A failed build or run exits 2, not 1: 1 means "regression".
fail() { log "ERROR: $*"; exit 2; }

# server_binary SIDE: the server binary of BASE or NEW (built when it is a revision); prints
# its path.
server_binary() {
    local spec=$1 commit dir
    if [[ "$spec" == */* && -x "$spec" ]]; then
        realpath "$spec"
        return
    fi
    commit="$(git rev-parse --verify --quiet "$spec^{commit}")" \
        || fail "'$spec' is neither an executable nor a git revision"
    dir="$BIN_CACHE/$commit"
    if [[ ! -x "$dir/ringmcp" ]]; then
        mkdir -p "$dir"
        if [[ "$(git rev-parse HEAD)" == "$commit" ]] && git diff --quiet HEAD \
            && [[ -z "$(git ls-files --others --exclude-standard)" ]]; then
            log "building $spec ($commit) in this checkout"
            cargo build --release -p ringmcp --bin ringmcp >&2 || fail "cannot build $spec"
            cp "$CARGO_TARGET_DIR/release/ringmcp" "$dir/ringmcp.part"
        else
            local tree="$CACHE_DIR/regress/src/$commit"
            log "building $spec ($commit) in a worktree ($tree)"
            git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
            git worktree add --detach --quiet "$tree" "$commit" || fail "cannot check out $spec"
            (cd "$tree" && CARGO_TARGET_DIR="$CACHE_DIR/regress/target" \
                cargo build --release -p ringmcp --bin ringmcp >&2) || fail "cannot build $spec"
            cp "$CACHE_DIR/regress/target/release/ringmcp" "$dir/ringmcp.part"
            git worktree remove --force "$tree"
        fi
        mv "$dir/ringmcp.part" "$dir/ringmcp"
    fi
    printf '%s\n' "$dir/ringmcp"
}

cargo build --release -p loadtest --bin ringmcp-load >&2 || fail "cannot build the load generator"
LOAD_BIN="$CARGO_TARGET_DIR/release/ringmcp-load"
BASE_BIN="$(server_binary "$1")"
NEW_BIN="$(server_binary "$2")"
mkdir -p "$OUT"
printf 'base %s\t%s\nnew %s\t%s\n' "$1" "$BASE_BIN" "$2" "$NEW_BIN" >"$OUT/builds"
log "base: $1 ($BASE_BIN)"
log "new:  $2 ($NEW_BIN)"
log "$PAIRS pairs of ${SCENARIOS// /, }; results in $OUT"

# run SCENARIO PAIR SIDE BINARY: one bench.sh run; its JSON becomes $OUT/SCENARIO/SIDE-PAIR.json.
run() {
    local scenario=$1 pair=$2 side=$3 binary=$4 dir="$OUT/runs/$1-$2-$3"
    log "pair $pair/$PAIRS, $scenario, $side"
    BENCH_SCENARIOS="$scenario" BENCH_SERVER_BIN="$binary" BENCH_LOAD_BIN="$LOAD_BIN" \
        BENCH_RESULTS="$dir" scripts/bench.sh >"$dir.log" 2>&1 \
        || fail "bench.sh failed ($dir.log)"
    local json
    json="$(ls "$dir"/*/"$scenario.json" 2>/dev/null | head -n 1)"
    [[ -n "$json" ]] || fail "bench.sh wrote no $scenario.json ($dir.log)"
    mkdir -p "$OUT/$scenario"
    cp "$json" "$OUT/$scenario/$side-$pair.json"
}

mkdir -p "$OUT/runs"
for (( pair = 1; pair <= PAIRS; pair++ )); do
    for scenario in $SCENARIOS; do
        if (( pair % 2 )); then
            run "$scenario" "$pair" base "$BASE_BIN"; run "$scenario" "$pair" new "$NEW_BIN"
        else
            run "$scenario" "$pair" new "$NEW_BIN"; run "$scenario" "$pair" base "$BASE_BIN"
        fi
    done
done

regressed=()
for scenario in $SCENARIOS; do
    base=() new=()
    for (( pair = 1; pair <= PAIRS; pair++ )); do
        base+=("$OUT/$scenario/base-$pair.json")
        new+=("$OUT/$scenario/new-$pair.json")
    done
    echo
    echo "== $scenario: $2 against $1"
    status=0
    "$LOAD_BIN" compare --base "${base[@]}" --new "${new[@]}" --threshold "$THRESHOLD" \
        --json "$OUT/$scenario/compare.json" --report "$OUT/$scenario/report.html" \
        | tee "$OUT/$scenario/compare.txt" || status=$?
    case $status in
        0) ;;
        1) regressed+=("$scenario") ;;
        *) fail "ringmcp-load compare failed on $scenario" ;;
    esac
done

echo
for scenario in $SCENARIOS; do
    if [[ " ${regressed[*]} " == *" $scenario "* ]]; then
        echo "REGRESSION     $scenario"
    else
        echo "no regression  $scenario"
    fi
done
log "done: $OUT"
(( ${#regressed[@]} == 0 )) || exit 1
