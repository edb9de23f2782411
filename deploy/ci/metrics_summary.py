"""Markdown table comparing the holdout metrics of registry aliases (candidate vs champion).

    python deploy/ci/metrics_summary.py --name oj-purchase [--tracking-uri URI]
        [--aliases candidate champion] [--title TEXT] >> "$GITHUB_STEP_SUMMARY"

The tracking URI defaults to $MLFLOW_TRACKING_URI. Used by the train workflow for the job
summary and the pull-request comment. An alias that does not exist yet shows as a dash.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def alias_metrics(client: Any, name: str, alias: str) -> tuple[str, dict[str, float]] | None:
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    metrics = client.get_run(version.run_id).data.metrics
    holdout = {k: float(v) for k, v in metrics.items() if not k.startswith(("cv_", "cv."))}
    return str(version.version), holdout


def render(name: str, columns: dict[str, tuple[str, dict[str, float]] | None], title: str) -> str:
    header = [f"{alias} (v{v[0]})" if v else f"{alias} (none)" for alias, v in columns.items()]
    metrics = sorted({m for found in columns.values() if found for m in found[1]})
    lines = [f"### {title}", "", f"Model `{name}`", ""]
    pair = len(columns) == 2
    lines.append("| metric | " + " | ".join(header) + (" | change |" if pair else " |"))
    lines.append("|---" * (len(columns) + 1 + pair) + "|")
    for metric in metrics:
        values = [found[1].get(metric) if found else None for found in columns.values()]
        cells = [f"{v:.4f}" if v is not None else "—" for v in values]
        if pair:
            first, second = values
            if first is None or second is None:
                cells.append("—")
            else:
                better = first < second if metric in LOWER_IS_BETTER else first > second
                mark = "better" if better else ("same" if first == second else "worse")
                cells.append(f"{first - second:+.4f} ({mark})")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    if not metrics:
        lines.append("| (no metrics) |" + " — |" * (len(columns) + pair))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="Registered model name")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--aliases", nargs="+", default=["candidate", "champion"])
    parser.add_argument("--title", default="Candidate vs champion")
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("--tracking-uri or MLFLOW_TRACKING_URI is required")

    from mlflow import MlflowClient

    client = MlflowClient(args.tracking_uri, registry_uri=args.tracking_uri)
    columns = {alias: alias_metrics(client, args.name, alias) for alias in args.aliases}
    sys.stdout.write(render(args.name, columns, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
