#!/usr/bin/env bash
# Builds the CUDA binaries (examples, benchmark, GPU tests) on a machine WITHOUT a CUDA toolkit
# or GPU, and prints how to run them on a CUDA 13 machine.
#
#   scripts/build-cuda.sh            # -> target/cuda-dist/
#
# The toolkit comes from PyPI wheels (CUDA 13.0.x compiler and libraries; ~560 MB download once,
# cached under /tmp) via scripts/setup-cuda13-build.sh (from the project's cuda-build notes).
# The build uses its own target directory (target/cuda) so the CPU build is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# shellcheck source=setup-cuda13-build.sh
source scripts/setup-cuda13-build.sh
set -euo pipefail

export CARGO_TARGET_DIR="$ROOT/target/cuda"
DIST="$ROOT/target/cuda-dist"
# dfdx's build script does not rerun when CUDA_ROOT changes.
cargo clean -p dfdx --release >/dev/null 2>&1 || true
cargo build --release --features cuda --example train_bench --example multi_task_ranking
TEST_BIN=$(cargo test --release --features cuda --test cuda --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])')

rm -rf "$DIST" && mkdir -p "$DIST"
cp "$CARGO_TARGET_DIR/release/examples/train_bench" "$CARGO_TARGET_DIR/release/examples/multi_task_ranking" "$DIST/"
cp "$TEST_BIN" "$DIST/cuda_tests"
cp -r /tmp/cuda13/ship-include "$DIST/ship-include"
# The GPU tests read the schema fixture relative to the crate root at compile time only (it is
# embedded), so the binaries need nothing else from the repository.

cat <<MSG
Built into $DIST:
  train_bench, multi_task_ranking   (--device cuda)
  cuda_tests                        (CPU/CUDA parity; run with --ignored)
  ship-include/                     (headers NVRTC needs at run time)

On the CUDA 13 machine (driver >= 580), with the CUDA 13 libraries on LD_LIBRARY_PATH
(libcuda.so.1 from the driver; libnvrtc.so.13, libnvrtc-builtins.so.13.0, libcublas.so.13,
libcublasLt.so.13 e.g. from PyTorch's nvidia-* wheels):
  mkdir -p /tmp/cuda13/include && cp ship-include/* /tmp/cuda13/include/
  ldd ./train_bench | grep -E 'cuda|cublas|nvrtc|not found'
  ./cuda_tests --ignored --nocapture
  for m in shared mmoe cgc ple; do ./train_bench --device cuda --data DATA_DIR --model \$m; ./train_bench --device cuda --data DATA_DIR --model \$m --batch 65536; done   # DATA_DIR: benches/pytorch-reference/make_data.py output
MSG
