#!/usr/bin/env bash
# Checks /metrics with a real Prometheus text parser (prometheus_client from PyPI):
# starts the server with 2 shards, makes some traffic, scrapes, parses, and checks
# that every family is there for both shards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PY_DIR="$REPO_ROOT/.cache/pytools"
python_venv "$PY_DIR" "prometheus-client==0.21.1"

make_tmpdir WORK
start_server "$WORK/server.log" --shards 2
init='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"metrics-check","version":"1"}}}'
for _ in 1 2 3 4; do
    curl -s -o /dev/null -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
        --data "$init" "$SERVER_URL/mcp"
    curl -s -o /dev/null "$SERVER_URL/nope"
done
curl -sf "$SERVER_URL/metrics" >"$WORK/metrics.txt"
"$PY_DIR/bin/python" - "$WORK/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
families = {f.name: f for f in text_string_to_metric_families(text)}
expected = [
    "ringmcp_connections", "ringmcp_connections_accepted", "ringmcp_sessions",
    "ringmcp_http_responses", "ringmcp_ws_close_sent", "ringmcp_errors",
    "ringmcp_messages_in", "ringmcp_messages_out", "ringmcp_bytes_in", "ringmcp_bytes_out",
    "ringmcp_backpressure_events", "ringmcp_handoffs", "ringmcp_ring_bytes",
    "ringmcp_ring_events", "ringmcp_rings", "ringmcp_ring_evictions",
    "ringmcp_request_duration_seconds", "ringmcp_shard_busy_seconds", "ringmcp_heap_bytes",
    "ringmcp_recv_multishot", "ringmcp_recv_buffer_shortages",
]
missing = [name for name in expected if name not in families]
if missing:
    sys.exit(f"missing metric families: {missing}")
# The heap is the process's, not a shard's.
heap = {s.labels["state"]: s.value for s in families.pop("ringmcp_heap_bytes").samples}
if heap.get("in_use", 0) <= 0 or "free" not in heap:
    sys.exit(f"expected the heap in use and free, got {heap}")
shards = {s.labels.get("shard") for f in families.values() for s in f.samples}
if shards != {"0", "1"}:
    sys.exit(f"expected samples from shards 0 and 1, got {sorted(map(str, shards))}")
sessions = sum(s.value for s in families["ringmcp_sessions"].samples)
statuses = {}
for sample in families["ringmcp_http_responses"].samples:
    statuses[sample.labels["status"]] = statuses.get(sample.labels["status"], 0) + sample.value
statuses = {k: v for k, v in statuses.items() if v}
if sessions < 4 or statuses.get("404", 0) < 4:
    sys.exit(f"traffic not reflected: sessions={sessions} statuses={statuses}")
busy = [s.value for s in families["ringmcp_shard_busy_seconds"].samples]
if len(busy) != 2 or not all(b > 0 for b in busy):
    sys.exit(f"expected a positive busy time from both shards, got {busy}")
print(f"metrics: {len(families)} families, {sum(len(f.samples) for f in families.values())} samples parse; "
      f"sessions={sessions:.0f}, statuses={statuses}")
PY
log "METRICS: PASS"
