#!/usr/bin/env bash
# Peer PostgreSQL job queues beside wireframe, in one run on this machine.
# Usage: benchmarks/compare/run.sh   (see README.md; needs the venv at $COMPARE_VENV)
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COMPARE_PY="${COMPARE_VENV:-/tmp/compare-venv}/bin/python"
WIREFRAME_PY="${WIREFRAME_PY:-$ROOT/.venv/bin/python}"
DSN="${DSN:-postgresql://postgres@127.0.0.1:5432/test}"
N="${N:-20000}"
cd "$ROOT" || exit 1

if [[ ! -x "$COMPARE_PY" ]]; then
    echo "no venv at ${COMPARE_PY%/bin/python}: see benchmarks/compare/README.md" >&2
    exit 1
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
labels=()
failed=0

run() {  # run LABEL COMMAND...: print its output under LABEL, keep its end-to-end figure
    local label="$1" log="$OUT/${#labels[@]}.log" rc
    shift
    labels+=("$label")
    echo "== $label"
    echo "\$ $*"
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    if ((rc != 0)); then
        echo "FAILED (exit $rc)" | tee -a "$log"
        failed=1
    fi
    echo
}

run "pgqueuer, dequeue batch 100" \
    "$COMPARE_PY" benchmarks/compare/pgqueuer_bench.py --dsn "$DSN" -n "$N" --batch 100
run "pgqueuer, dequeue batch 10" \
    "$COMPARE_PY" benchmarks/compare/pgqueuer_bench.py --dsn "$DSN" -n "$N" --batch 10
run "procrastinate" \
    "$COMPARE_PY" benchmarks/compare/procrastinate_bench.py --dsn "$DSN" -n 2000
run "wireframe, 4 worker processes" \
    "$WIREFRAME_PY" benchmarks/throughput.py --store "$DSN" --workers 4 -n "$N"
run "wireframe, 4 worker processes, batch 100, concurrency 100" \
    "$WIREFRAME_PY" benchmarks/throughput.py --store "$DSN" --workers 4 -n "$N" --batch 100 \
    --concurrency 100
run "wireframe, 1 worker process" \
    "$WIREFRAME_PY" benchmarks/throughput.py --store "$DSN" --workers 1 -n "$N"

echo "== end to end (jobs/s), same run"
for i in "${!labels[@]}"; do
    figure="$(grep -E 'end to end:' "$OUT/$i.log" | awk -F: '{print $2}' | tr -d ' jobs/')"
    if grep -q '^FAILED' "$OUT/$i.log"; then figure="failed"; fi
    printf '  %-32s %10s\n' "${labels[$i]}" "${figure:-?}"
done
exit "$failed"
