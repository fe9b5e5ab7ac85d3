#!/usr/bin/env bash
# Equal-work training throughput, mtl against the PyTorch reference, measured alternately in one
# sitting on an idle machine; prints the medians and ratios as a Markdown table.
#
#   benches/side_by_side.sh DATA_DIR [--runs 3] [--models "shared mmoe cgc ple"]
#                           [--batches "4096 16384"] [--out results.jsonl]
#
# DATA_DIR: what `benches/pytorch-reference/make_data.py DATA_DIR --train-rows 1000000` writes.
# PYTHON: a Python with torch, numpy and pyarrow (default: python3). PyTorch also runs with
# tcmalloc (LD_PRELOAD) when TCMALLOC names the library or Debian's libtcmalloc-minimal4 is
# installed. Before every run the script waits (up to 60 s) until the other processes use less
# than 0.1 core, and marks the run if they did not.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:?usage: benches/side_by_side.sh DATA_DIR [--runs N] [--models \"...\"] [--batches \"...\"] [--out FILE]}"
shift
runs=3
models="shared mmoe cgc ple"
batches="4096 16384"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-python3}"
tcmalloc="${TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4}"
[ -f "$tcmalloc" ] || tcmalloc=""
"$python" -c "import torch, numpy, pyarrow" 2>/dev/null || {
  echo "$python lacks torch/numpy/pyarrow: set PYTHON to one that has them (see benches/pytorch-reference/SOURCE.md)" >&2
  exit 1
}
[ -f "$data/train.parquet" ] || { echo "$data/train.parquet not found: run benches/pytorch-reference/make_data.py $data --train-rows 1000000" >&2; exit 1; }

cargo build --release --example train_bench >&2
mtl=target/release/examples/train_bench
results="${out:-$(mktemp)}"
: > "$results"

# CPU time (in cores) used by all processes over one second.
busy_cores() {
  read -r _ a b c d e f g h _ < /proc/stat; local busy0=$((a + b + c + f + g + h)) idle0=$((d + e))
  sleep 1
  read -r _ a b c d e f g h _ < /proc/stat; local busy1=$((a + b + c + f + g + h)) idle1=$((d + e))
  awk -v b=$((busy1 - busy0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", b / hz }'
}

# Waits until the machine is idle; prints "idle" or "busy(<cores>)".
wait_idle() {
  local used
  for _ in $(seq 60); do
    used=$(busy_cores)
    if awk -v u="$used" 'BEGIN { exit !(u < 0.1) }'; then echo idle; return; fi
  done
  echo "busy($used)"
}

# Runs one benchmark command and appends its JSON line, tagged, to the results.
record() {
  local tag="$1" state json
  shift
  state=$(wait_idle)
  echo "[$tag] $* ($state)" >&2
  json=$("$@" 2>/dev/null | tail -n 1)
  echo "{\"tag\": \"$tag\", \"machine\": \"$state\", \"result\": $json}" >> "$results"
}

for run in $(seq "$runs"); do
  for batch in $batches; do
    for model in $models; do
      record mtl "$mtl" --data "$data" --model "$model" --batch "$batch"
      record pytorch "$python" benches/pytorch-reference/bench_mtl.py "$data" --model "$model" --batch-size "$batch"
      if [ -n "$tcmalloc" ]; then
        record pytorch+tcmalloc env LD_PRELOAD="$tcmalloc" "$python" benches/pytorch-reference/bench_mtl.py "$data" --model "$model" --batch-size "$batch"
      fi
    done
  done
  echo "run $run of $runs done" >&2
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    res = r["result"]
    key = (res["model"], res["batch_size"], r["tag"])
    by.setdefault(key, []).append(r)
def med(key, f):
    vals = [f(r) for r in by.get(key, [])]
    return statistics.median(vals) if vals else float("nan")
def rate(r): return r["result"]["samples_per_s"]
def cores(r):
    res = r["result"]
    return res.get("cores") or res["train_cpu_s"] / res["train_s"]
busy = sum(r["machine"] != "idle" for r in rows)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"{len(rows)} runs on {cpu}, {busy} of them on a busy machine; medians of "
      f"{max(len(v) for v in by.values())} runs")
print()
print("| model | batch | mtl samples/s | PyTorch | PyTorch + tcmalloc | mtl / best PyTorch | mtl GFLOP/s | mtl cores | PyTorch cores | mtl peak RSS MB | PyTorch peak RSS MB | AUC click mtl / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
seen = []
for (model, batch, _) in by:
    if (model, batch) not in seen: seen.append((model, batch))
for model, batch in seen:
    m = med((model, batch, "mtl"), rate)
    p = med((model, batch, "pytorch"), rate)
    pt = med((model, batch, "pytorch+tcmalloc"), rate)
    best = max(x for x in (p, pt) if x == x) if (p == p or pt == pt) else float("nan")
    gf = med((model, batch, "mtl"), lambda r: r["result"].get("gflops", float("nan")))
    mc = med((model, batch, "mtl"), cores)
    pc = med((model, batch, "pytorch"), cores)
    mr = med((model, batch, "mtl"), lambda r: r["result"]["peak_rss_mb"])
    pr = med((model, batch, "pytorch"), lambda r: r["result"]["peak_rss_mb"])
    ma = med((model, batch, "mtl"), lambda r: r["result"]["auc_click"])
    pa = med((model, batch, "pytorch"), lambda r: r["result"]["auc_click"])
    print(f"| {model} | {batch} | {m:,.0f} | {p:,.0f} | {pt:,.0f} | **{m / best:.2f}x** | {gf:.0f} | {mc:.2f} | {pc:.2f} | {mr:,.0f} | {pr:,.0f} | {ma:.4f} / {pa:.4f} |")
PY
echo "raw results: $results" >&2
