#!/usr/bin/env bash
# Fuzzes the sans-IO protocol code with cargo-fuzz (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 600 s, every target;
#                                                          0: build and replay the corpus once)
#
# Targets (tests/fuzz/fuzz_targets/, drivers in tests/fuzz/src/lib.rs):
#   http_head         RequestHead::parse + ChunkedDecoder, fuzzer-chosen chunking
#   ws_decoder        ws::Decoder::decode, both roles, fuzzer-chosen chunking and read window
#   sse               SseDecoder::decode and EventId::parse (Last-Event-ID)
#   jsonrpc_dispatch  jsonrpc::parse + mcp::Dispatcher::handle, built-in registry
#   auth_header       proto::auth: bearer_token, query_carries_token, Challenge (RFC 6750)
#
# cargo-fuzz is installed into .cache/fuzz-tools on first use. It needs nightly-only
# rustc flags (-Zsanitizer); by default the stable toolchain is used with
# RUSTC_BOOTSTRAP=1, so no nightly is required. FUZZ_TOOLCHAIN=nightly uses rustup's
# nightly instead.
#
# Corpora grow in .cache/fuzz/corpus/<target> (seeded from tests/fuzz/seeds/<target>),
# crashes land in .cache/fuzz/artifacts/<target>/, logs in .cache/fuzz/logs/<target>.log.
# Prints executions, exec/s, corpus size and findings per target; exits 1 if any target
# found a crash, leak, timeout or OOM, 2 on a setup/build failure.
#
# Env:
#   FUZZ_TOOLCHAIN=<name>   rustup toolchain for the build (default: stable + RUSTC_BOOTSTRAP=1)
#   FUZZ_PARALLEL=N         targets run at the same time (default 1; each uses one core)
#   FUZZ_ARGS="..."         extra libFuzzer flags, e.g. "-max_len=16384 -only_ascii=1"
#   CARGO_TARGET_DIR        build directory (default: <repo>/target)
#
# Reproduce a finding: <binary printed below> <crash file>, or add the file's bytes to the
# regression tests in tests/properties.rs (they replay through the same drivers).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(http_head ws_decoder sse jsonrpc_dispatch auth_header tls_server)

SECONDS_PER_TARGET=${1:-600}
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || die "usage: $0 [SECONDS_PER_TARGET] [TARGET...]"
shift $(( $# > 0 ? 1 : 0 ))
TARGETS=("$@")
(( ${#TARGETS[@]} )) || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (known: ${ALL_TARGETS[*]})"
done
PARALLEL=${FUZZ_PARALLEL:-1}
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_PARALLEL must be a positive integer"

FUZZ_DIR=tests/fuzz
TOOLS="$CACHE_DIR/fuzz-tools"
WORK="$CACHE_DIR/fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"

# ---------------------------------------------------------------- tooling
if ! stamp_matches "$TOOLS" "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    mkdir -p "$TOOLS"
    cargo install --locked --root "$TOOLS" --version "$CARGO_FUZZ_VERSION" cargo-fuzz \
        || { warn "cargo install cargo-fuzz failed"; exit 2; }
    write_stamp "$TOOLS" "cargo-fuzz $CARGO_FUZZ_VERSION"
fi
export PATH="$TOOLS/bin:$PATH"

toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
else
    # cargo-fuzz passes -Zsanitizer=address and other -Z flags; stable rustc accepts them
    # with RUSTC_BOOTSTRAP=1, and its rust-std already ships the ASan runtime.
    export RUSTC_BOOTSTRAP=1
fi
host="$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')"

# ---------------------------------------------------------------- build
log "building fuzz targets (${toolchain[*]:-stable, RUSTC_BOOTSTRAP=1}; debug assertions on)"
cargo "${toolchain[@]}" fuzz build --fuzz-dir "$FUZZ_DIR" --release --debug-assertions \
    || { warn "fuzz build failed"; exit 2; }
BIN_DIR="$CARGO_TARGET_DIR/$host/release"

# ---------------------------------------------------------------- run
mkdir -p "$WORK/logs"
# run_target NAME: fuzzes one target for SECONDS_PER_TARGET; writes NAME.result.
run_target() {
    local t=$1 corpus="$WORK/corpus/$1" artifacts="$WORK/artifacts/$1/" logf="$WORK/logs/$1.log"
    local seeds="$REPO_ROOT/$FUZZ_DIR/seeds/$t" dict="$REPO_ROOT/$FUZZ_DIR/dict/$t.dict"
    local before after rc=0 args=() t0=$SECONDS
    mkdir -p "$corpus" "$artifacts"
    [[ -f "$dict" ]] && args+=("-dict=$dict")
    # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
    args+=(${FUZZ_ARGS:-})
    before=$(find "$artifacts" -type f | wc -l)
    log "$t: fuzzing for ${SECONDS_PER_TARGET}s (log: $logf)"
    # libFuzzer reads -max_total_time=0 as "forever"; 0 here means: replay the corpus once.
    if (( SECONDS_PER_TARGET == 0 )); then args+=(-runs=0); else args+=(-max_total_time="$SECONDS_PER_TARGET"); fi
    "$BIN_DIR/$t" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts" "${args[@]}" \
        "$corpus" "$seeds" >"$logf" 2>&1 </dev/null || rc=$?
    after=$(find "$artifacts" -type f | wc -l)
    local execs eps
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -n1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -n1)
    printf '%s %s %s %s %s %s %s\n' "$t" "$rc" "${execs:-?}" "${eps:-?}" "$(( SECONDS - t0 ))" \
        "$(find "$corpus" -type f | wc -l)" "$(( after - before ))" >"$WORK/logs/$t.result"
}

pids=()
for t in "${TARGETS[@]}"; do
    while (( $(jobs -rp | wc -l) >= PARALLEL )); do wait -n || true; done
    run_target "$t" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

# ---------------------------------------------------------------- report
failed=0
printf '\n%-17s %12s %9s %7s %8s  %s\n' target executions exec/s seconds corpus findings
for t in "${TARGETS[@]}"; do
    read -r name rc execs eps secs corpus found <"$WORK/logs/$t.result" || { failed=1; continue; }
    verdict=none
    if (( rc != 0 || found > 0 )); then
        failed=1
        verdict="CRASH (exit $rc, $found new file(s) in $WORK/artifacts/$t/)"
    fi
    printf '%-17s %12s %9s %7s %8s  %s\n' "$name" "$execs" "$eps" "$secs" "$corpus" "$verdict"
done
if (( failed )); then
    echo
    for t in "${TARGETS[@]}"; do
        grep -h -A3 -E '^(==[0-9]+==ERROR|SUMMARY|thread .* panicked)' "$WORK/logs/$t.log" 2>/dev/null | head -n 20 || true
    done
    echo "reproduce: $BIN_DIR/<target> <crash file>"
fi
exit "$failed"
