"""In-process cost of one request, stage by stage and per body shape: `bench_decode.py`.

    uv run python benchmarks/bench_decode.py --model MODEL_DIR [--rows 1000] [--runtime auto]
    PYTHONPATH=/path/to/other/checkout/src uv run python benchmarks/bench_decode.py ...

For each body shape (`/score` records, arrays, `dataframe_split`, MLflow columnar `inputs`,
CSV with a header, an Open Inference Protocol request with one input per column, and Arrow IPC
when pyarrow is installed) it times, in this process and without HTTP: decode (body bytes to
columns), validate, predict (the backend), and encode (the reply to bytes: records JSON, the
columnar JSON reply, and Arrow). Each figure is the best of `--repeat` timings of a loop of
`--loops` calls, in milliseconds per call: on a machine shared with other jobs the minimum is
the figure least disturbed by them. Running it with `PYTHONPATH` pointing at another checkout's
`src` (a `git worktree` of an older commit, say) gives that code's figures for a before/after
comparison on the same rows; shapes or replies that code does not know print as "-".
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def best(call: Callable[[], Any], loops: int, repeat: int) -> float:
    """Milliseconds per call: the best of ``repeat`` timed loops of ``loops`` calls."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            call()
        times.append((time.perf_counter() - start) / loops)
    return min(times) * 1e3


def bodies(frame: Any, categorical: set[str]) -> dict[str, tuple[bytes, str, str]]:
    """shape -> (body, content type, route kind)."""
    records = json.loads(frame.to_json(orient="records"))
    split = json.loads(frame.to_json(orient="split", index=False))
    columns = {name: [r[name] for r in records] for name in frame.columns}
    tensors = [
        {"name": name, "shape": [len(frame)],
         "datatype": "BYTES" if name in categorical else "FP64",
         "data": [str(v) for v in values] if name in categorical else values}
        for name, values in columns.items()
    ]  # fmt: skip
    json_type = "application/json"
    out = {
        "records": (json.dumps(records).encode(), json_type, "score"),
        "arrays": (json.dumps(split["data"]).encode(), json_type, "score"),
        "dataframe_split": (json.dumps({"dataframe_split": split}).encode(), json_type, "score"),
        "inputs columnar": (json.dumps({"inputs": columns}).encode(), json_type, "score"),
        "csv": (frame.to_csv(index=False).encode(), "text/csv", "score"),
        "oip per column": (json.dumps({"inputs": tensors}).encode(), json_type, "oip"),
    }
    try:
        import pyarrow as pa
    except ImportError:
        return out
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    out["arrow"] = (sink.getvalue(), "application/vnd.apache.arrow.stream", "score")
    return out


def stages(predictor: Any, frame: Any, time_it: Callable[[Callable[[], Any]], float]) -> Any:
    """Print decode/validate/predict per body shape; return the last prediction."""
    from mlship.serving.codecs import native, oip

    categorical = {c.name for c in predictor.columns if c.kind == "categorical"}
    print(f"{'shape':<18}{'decode':>9}{'validate':>10}{'predict':>9}")
    result = None
    for shape, (body, content_type, route) in bodies(frame, categorical).items():
        codec = oip.decode if route == "oip" else native.decode

        def decode(b: bytes = body, t: str = content_type, c: Any = codec) -> Any:
            out = c(b, t, predictor, "reject")
            return out[0] if isinstance(out, tuple) else out

        try:
            columns = decode()
        except Exception as exc:  # an older checkout without this shape
            print(f"{shape:<18}{'-':>9}  ({type(exc).__name__}: {str(exc)[:60]})")
            continue
        checked = predictor.validate(columns)
        cost = (
            time_it(decode),
            time_it(lambda c=columns: predictor.validate(c)),
            time_it(lambda v=checked: predictor.predict_valid(v.columns)),
        )
        result = predictor.predict_valid(checked.columns)
        print(f"{shape:<18}{cost[0]:>9.2f}{cost[1]:>10.2f}{cost[2]:>9.2f}")
    return result


def replies(predictor: Any, result: Any, time_it: Callable[[Callable[[], Any]], float]) -> None:
    """Print the cost and size of each reply format this checkout has."""
    import orjson

    from mlship.serving.codecs import native

    option = orjson.OPT_SERIALIZE_NUMPY
    encoders: dict[str, Callable[[], bytes]] = {
        "records json": lambda: orjson.dumps(native.encode(result, predictor), option=option),
    }
    if hasattr(native, "encode_columnar"):
        encoders["columnar json"] = lambda: orjson.dumps(
            native.encode_columnar(result, predictor), option=option
        )
    try:
        from mlship.serving.codecs import arrow

        encoders["arrow"] = lambda: arrow.encode(result, predictor)
    except ImportError:
        pass
    print(f"\n{'reply':<18}{'encode':>9}{'bytes':>10}")
    for name, encode in encoders.items():
        print(f"{name:<18}{time_it(encode):>9.2f}{len(encode()):>10,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved model dir")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--loops", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import pandas as pd

    from mlship.scoring.predictor import Predictor

    predictor = Predictor.load(args.model, runtime=args.runtime)
    frame = pd.read_csv(ROOT / "data" / "oj.csv")[predictor.column_names]
    frame = pd.concat([frame] * (args.rows // len(frame) + 1), ignore_index=True)
    frame = frame.head(args.rows)
    print(f"{args.model.name} ({predictor.runtime}), {args.rows:,} rows, ms per call (best of "
          f"{args.repeat} x {args.loops})")  # fmt: skip
    result = stages(predictor, frame, lambda call: best(call, args.loops, args.repeat))
    if result is not None:
        replies(predictor, result, lambda call: best(call, args.loops, args.repeat))


if __name__ == "__main__":
    main()
