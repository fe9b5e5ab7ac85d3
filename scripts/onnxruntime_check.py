#!/usr/bin/env python3
"""Checks an mtl ONNX export with ONNX Runtime (from PyPI).

Usage: python3 scripts/onnxruntime_check.py DIR [--require]

DIR is what `cargo run --release --example serve -- train` writes: DIR/model.onnx and
DIR/onnx_check/{inputs,predictions}.parquet (encoded test rows and mtl's own scores for them).
Runs the model with ONNX Runtime's CPU provider on every row and prints, per output, the
largest absolute difference from mtl's scores; exits 1 when one passes 1e-5.

Without onnxruntime, numpy or pyarrow installed it says so and exits 0 (skipped), or 1 with
--require. Install them with: pip install onnxruntime numpy pyarrow
"""
import sys

TOLERANCE = 1e-5


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    require = "--require" in sys.argv[1:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import numpy as np
        import onnxruntime as ort
        import pyarrow.parquet as pq
    except ImportError as e:
        print(f"onnxruntime check skipped: {e.name} is not installed "
              "(pip install onnxruntime numpy pyarrow)")
        return 1 if require else 0

    directory = args[0].rstrip("/")
    session = ort.InferenceSession(f"{directory}/model.onnx", providers=["CPUExecutionProvider"])
    inputs = pq.read_table(f"{directory}/onnx_check/inputs.parquet")
    expected = pq.read_table(f"{directory}/onnx_check/predictions.parquet")
    feed = {}
    for i in session.get_inputs():
        column = inputs.column(i.name).to_numpy()
        feed[i.name] = column.astype(np.int64 if i.type == "tensor(int64)" else np.float32)
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feed)
    rows = inputs.num_rows
    print(f"onnxruntime {ort.__version__}, {rows} rows, outputs {names}")
    worst = 0.0
    for name, got in zip(names, results):
        want = expected.column(name).to_numpy().reshape(rows, -1)
        diff = float(np.max(np.abs(got.reshape(rows, -1) - want)))
        worst = max(worst, diff)
        print(f"{name}: shape {list(got.shape)}, max |onnxruntime - mtl| = {diff:.2e}")
    if worst > TOLERANCE:
        print(f"FAILED: a difference above {TOLERANCE}")
        return 1
    print(f"ok: every output within {TOLERANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
