"""The monitoring report: a JSON summary and a small self-contained HTML page of the same facts."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlship.model.saved import ModelInfo
from mlship.monitoring.drift import Drift

SUMMARY = "summary.json"
REPORT = "report.html"


@dataclass(frozen=True)
class Monitoring:
    """What ``mlship monitor`` found; ``run_id`` is the MLflow run that records it."""

    info: ModelInfo
    data_uri: str
    rows: int
    features: list[Drift]
    prediction: list[Drift]
    thresholds: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""

    @property
    def drifted(self) -> list[str]:
        return [d.name for d in self.features if d.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    @property
    def failed(self) -> bool:
        return self.drift_share >= self.thresholds["drift_share"]

    def summary(self) -> dict[str, Any]:
        info = self.info
        training = {k: v for k, v in info.metrics.items() if k in self.metrics}
        return {
            "model": {"name": info.name, "version": info.version, "run_id": info.run_id},
            "data": {"uri": self.data_uri, "rows": self.rows},
            "thresholds": self.thresholds,
            "drift_share": round(self.drift_share, 6),
            "drifted_features": self.drifted,
            "dataset_drift": self.failed,
            "features": [asdict(d) for d in self.features],
            "prediction": [asdict(d) for d in self.prediction],
            "performance": {
                "metrics": self.metrics,
                "training": training,
                "change": {k: self.metrics[k] - v for k, v in training.items()},
            }
            if self.metrics
            else None,
            "monitor_run_id": self.run_id,
        }


def write_reports(result: Monitoring, dest: Path) -> tuple[Path, Path]:
    """``summary.json`` and ``report.html`` in ``dest`` (made if needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    summary = dest / SUMMARY
    summary.write_text(json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8")
    report = dest / REPORT
    report.write_text(render_html(result), encoding="utf-8")
    return summary, report


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;
text-align:right}td:first-child,th:first-child{text-align:left}.drift{background:#fde2e1}
.bar{display:inline-block;height:10px;background:#c0392b}.ok{color:#1e8449}.bad{color:#c0392b}"""


def _rows(drifts: list[Drift], threshold: float) -> str:
    out = []
    for d in drifts:
        width = min(d.psi / threshold, 3.0) * 40 if threshold else 0.0
        out.append(
            f"<tr class='{'drift' if d.drifted else ''}'><td>{html.escape(d.name)}</td>"
            f"<td>{d.kind}</td><td>{d.rows:,}</td><td>{d.psi:.4f} "
            f"<span class='bar' style='width:{width:.0f}px'></span></td><td>{d.p_value:.3g}</td>"
            f"<td>{d.reference_null_rate:.3f} &rarr; {d.null_rate:.3f}</td>"
            f"<td>{'drifted' if d.drifted else ''}</td></tr>"
        )
    return "\n".join(out)


def _performance(result: Monitoring) -> str:
    if not result.metrics:
        return ""
    lines = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td>"
        + (
            f"<td>{result.info.metrics[k]:.4f}</td><td>{v - result.info.metrics[k]:+.4f}</td>"
            if k in result.info.metrics
            else "<td>-</td><td>-</td>"
        )
        + "</tr>"
        for k, v in result.metrics.items()
    )
    head = "<tr><th>metric</th><th>this batch</th><th>training holdout</th><th>change</th></tr>"
    return f"<h2>Performance</h2><table>{head}{lines}</table>"


def render_html(result: Monitoring) -> str:
    info, limits = result.info, result.thresholds
    verdict = (
        f"<p class='{'bad' if result.failed else 'ok'}'><b>{len(result.drifted)} of "
        f"{len(result.features)} features drifted ({result.drift_share:.0%}; the limit is "
        f"{limits['drift_share']:.0%})</b></p>"
    )
    head = (
        "<tr><th>column</th><th>type</th><th>rows</th><th>PSI</th><th>chi-square p</th>"
        "<th>null rate (training &rarr; batch)</th><th></th></tr>"
    )
    limit = limits["psi_threshold"]
    title = f"Drift of {html.escape(info.name)} v{html.escape(info.version)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f"<p>{result.rows:,} rows of {html.escape(result.data_uri)} against the training "
        f"profile (run {html.escape(info.run_id)}). A column drifts when its PSI is above "
        f"{limits['psi_threshold']:g} and the chi-square p-value below {limits['p_value']:g}."
        f"</p>{verdict}<h2>Features</h2><table>{head}{_rows(result.features, limit)}"
        f"</table><h2>Predictions</h2><table>{head}"
        f"{_rows(result.prediction, limit)}</table>{_performance(result)}"
        "</body></html>\n"
    )
