"""Write N rows shaped like a small table, for scale tests: a seeded bootstrap with light noise.

Rows are drawn with replacement from the source; float columns get Gaussian noise of
``noise`` times their standard deviation, so values are new but plausible, while integer,
boolean and text columns keep values the model has seen (an integer store id stays a known
category). Generation streams ``chunk_rows`` at a time, one Parquet row group or CSV block per
chunk, so five million rows never sit in memory at once. The file appears only when complete.

    python -m benchmarks.generate_data --source data/oj.csv --rows 5000000 --output oj-5m.parquet
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def generate(
    source: pd.DataFrame,
    rows: int,
    output: Path,
    *,
    seed: int = 0,
    noise: float = 0.01,
    chunk_rows: int = 100_000,
    id_column: str | None = "row_id",
) -> int:
    """Write ``rows`` rows to ``output`` (Parquet, or CSV by extension); returns the count."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if rows < 0 or chunk_rows < 1 or source.empty:
        raise ValueError("need rows >= 0, chunk_rows >= 1 and a non-empty source")
    rng = np.random.default_rng(seed)
    floats = [c for c in source.columns if source[c].dtype.kind == "f"]
    scale = {c: float(np.nan_to_num(source[c].std())) * noise for c in floats}
    csv = output.suffix.lower() == ".csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{uuid.uuid4().hex[:8]}")
    writer: Any = None
    try:
        for start in range(0, rows, chunk_rows):
            count = min(chunk_rows, rows - start)
            chunk = source.iloc[rng.integers(0, len(source), count)].reset_index(drop=True)
            for column in floats:
                chunk[column] = chunk[column] + rng.normal(0.0, scale[column], count)
            if id_column:
                chunk.insert(0, id_column, np.arange(start, start + count, dtype=np.int64))
            table = pa.Table.from_pandas(chunk, preserve_index=False).replace_schema_metadata()
            if writer is None:
                writer = (
                    pacsv.CSVWriter(tmp, table.schema)
                    if csv
                    else pq.ParquetWriter(tmp, table.schema)
                )
            writer.write_table(table)
        if writer is None:  # zero rows: still a valid, empty file with the schema
            empty = pa.Table.from_pandas(source.head(0), preserve_index=False)
            writer = (
                pacsv.CSVWriter(tmp, empty.schema) if csv else pq.ParquetWriter(tmp, empty.schema)
            )
        writer.close()
        writer = None
        tmp.replace(output)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="CSV or Parquet to imitate.")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True, help=".parquet or .csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.01, help="Noise, in column std units.")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--id-column", default="row_id", help="Empty string for none.")
    args = parser.parse_args(argv)
    source = (
        pd.read_parquet(args.source)
        if args.source.suffix.lower() in (".parquet", ".pq")
        else pd.read_csv(args.source)
    )
    count = generate(
        source,
        args.rows,
        args.output,
        seed=args.seed,
        noise=args.noise,
        chunk_rows=args.chunk_rows,
        id_column=args.id_column or None,
    )
    print(f"wrote {count:,} rows -> {args.output}")


if __name__ == "__main__":
    main()
