"""The live drift window on a small hand-made profile: binning as ``mlship monitor`` bins, the
ring forgetting whole blocks, null and unseen-category counters, the series a scrape reads,
and several workers' files summed as one server."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlship.errors import MlshipError
from mlship.model.profile import (
    CategoryBins,
    FeatureProfile,
    NumericBins,
    PredictionProfile,
    Profile,
    psi,
    write_profile,
)
from mlship.monitoring import live
from mlship.monitoring.live import LiveDrift, open_live_drift, prepare
from mlship.monitoring.window import BLOCKS, Ring, distributions
from mlship.scoring.results import Prediction

PRICE = NumericBins((1.0, 2.0, 3.0), (0.25, 0.25, 0.25, 0.25))
STORE = CategoryBins({"1": 0.5, "7": 0.5}, 0.0)
PROBA = NumericBins((0.5,), (0.5, 0.5))


def profile() -> Profile:
    features = {
        "price": FeatureProfile("price", "numeric", 0.1, PRICE, {}),
        "store": FeatureProfile("store", "categorical", 0.0, STORE, {}),
    }
    labels = CategoryBins({"CH": 0.5, "MM": 0.5}, 0.0)
    return Profile(100, 20, features, PredictionProfile(labels, {"CH": PROBA, "MM": PROBA}))


def request(prices: list[Any], stores: list[Any], p_ch: float = 0.7) -> tuple[Any, Prediction]:
    label = "CH" if p_ch >= 0.5 else "MM"
    proba = np.tile([p_ch, 1 - p_ch], (len(prices), 1))
    columns = {"price": np.asarray(prices, dtype=object), "store": np.asarray(stores, dtype=object)}
    return columns, Prediction([label] * len(prices), proba, ["CH", "MM"])


def scrape(drift: LiveDrift) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the collector, by (name, labels), as Prometheus would read it."""
    registry = CollectorRegistry()
    registry.register(drift)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_slots_bin_as_the_profile_bins() -> None:
    tracked = distributions(profile())
    price, store = tracked[0], tracked[1]
    values = np.array([0.5, 1.0, 1.5, 2.0, 9.0, None, np.nan], dtype=object)
    slots = price.slots(values) - price.offset
    assert slots.tolist() == [0, 1, 1, 2, 3, 4, 4]  # edges count from the right; 4: missing
    assert (np.bincount(slots[:5], minlength=4) / 5).tolist() == list(
        PRICE.shares_of(np.array([0.5, 1.0, 1.5, 2.0, 9.0]))
    )
    # 7 and 7.0 are store "7", as the model reads them; 3 is unseen (other); None missing
    texts = np.array(["1", 7, 7.0, "3", None], dtype=object)
    assert (store.slots(texts) - store.offset).tolist() == [0, 1, 1, 2, 3]
    integers = np.array([7, 1, 3, -1], dtype=object)  # JSON numbers: looked up as numbers
    assert (store.slots(integers) - store.offset).tolist() == [1, 0, 2, 2]
    assert [t.name for t in tracked] == ["price", "store", "prediction", "proba_CH", "proba_MM"]


def test_category_bins_of_many_texts_match_a_plain_lookup() -> None:
    bins = CategoryBins({"b": 0.2, "a": 0.3, "zz": 0.1, "": 0.0}, 0.4)
    texts = ["a", "b", "c", "zz", "", "aa", "b"]
    lookup = {name: i for i, name in enumerate(bins.categories)}
    assert bins.bin_of(texts).tolist() == [lookup.get(t, 4) for t in texts]
    assert CategoryBins({}, 1.0).bin_of(["x"]).tolist() == [0]


def test_the_ring_forgets_whole_blocks_and_keeps_totals() -> None:
    ring = Ring(width=3, window=100)  # 10 blocks of 10 rows
    assert ring.block_rows == 10
    ring.add(np.zeros((95, 1), dtype=np.intp))  # 95 rows in slot 0
    assert ring.counts[:BLOCKS].sum() == 95
    ring.add(np.ones((10, 1), dtype=np.intp))  # 105 rows: the first block (10 rows) is gone
    window = ring.counts[:BLOCKS].sum(axis=0)
    assert window.tolist() == [85, 10, 0] and ring.counts[BLOCKS].tolist() == [95, 10, 0]
    ring.add(np.full((1000, 1), 2, dtype=np.intp))  # more than the window at once
    window = ring.counts[:BLOCKS].sum(axis=0)
    assert window.tolist() == [0, 0, 90 + ring.filled]
    assert ring.counts[BLOCKS].tolist() == [95, 10, 1000]


def test_a_scrape_reads_psi_nulls_and_unseen_categories() -> None:
    drift = LiveDrift(profile(), window=1000)
    empty = scrape(drift)
    assert np.isnan(value(empty, "mlship_drift_psi", feature="price"))
    assert value(empty, "mlship_drift_window_rows") == 0
    for _ in range(10):  # the reference: a quarter in each price bin, half per store
        drift.record(*request([0.5, 1.5, 2.5, 3.5], ["1", "7", 1, 7]))
    drift.record(*request([None, 1.5], ["3", "7"]))  # one missing price, one unseen store
    samples = scrape(drift)  # the queue (under FOLD_ROWS) is binned by the scrape itself
    assert value(samples, "mlship_drift_window_rows") == 42
    assert value(samples, "mlship_drift_rows_total") == 42
    assert value(samples, "mlship_drift_null_values_total", feature="price") == 1
    assert value(samples, "mlship_drift_null_values_total", feature="store") == 0
    assert value(samples, "mlship_drift_unseen_category_values_total", feature="store") == 1
    assert value(samples, "mlship_drift_null_rate", feature="price") == pytest.approx(1 / 42)
    assert value(samples, "mlship_drift_reference_null_rate", feature="price") == 0.1
    shares = np.array([10, 11, 10, 10]) / 41
    assert value(samples, "mlship_drift_psi", feature="price") == pytest.approx(
        psi(PRICE.shares, shares), abs=1e-6
    )
    assert value(samples, "mlship_drift_psi", feature="price") < 0.05
    # every prediction said CH with 0.7: the labels and the probabilities moved
    assert value(samples, "mlship_drift_prediction_psi", output="prediction") > 1
    assert value(samples, "mlship_drift_prediction_psi", output="proba_MM") > 1
    assert ("mlship_drift_unseen_category_values_total", (("feature", "price"),)) not in samples


def test_a_shift_shows_and_then_leaves_the_window() -> None:
    drift = LiveDrift(profile(), window=100)
    for _ in range(25):
        drift.record(*request([3.5, 3.5, 3.5, 3.5], ["1", "7", "1", "7"]))  # all in the top bin
    assert value(scrape(drift), "mlship_drift_psi", feature="price") > 2
    assert value(scrape(drift), "mlship_drift_psi", feature="store") < 0.01
    for _ in range(25):  # 100 reference-like rows push the shifted ones out
        drift.record(*request([0.5, 1.5, 2.5, 3.5], ["1", "7", "1", "7"]))
    samples = scrape(drift)
    assert value(samples, "mlship_drift_psi", feature="price") < 0.01
    assert value(samples, "mlship_drift_rows_total") == 200


def test_a_bad_batch_is_counted_not_raised() -> None:
    drift = LiveDrift(profile(), window=100)
    columns, result = request([1.0], ["1"])
    drift.record(columns, Prediction(["CH"], np.zeros((1, 5)), ["CH", "MM"]))  # wrong shape
    drift.record(columns, result)
    samples = scrape(drift)
    assert value(samples, "mlship_drift_failed_rows_total") == 2
    drift.record(columns, result)
    assert value(scrape(drift), "mlship_drift_rows_total") == 1


def test_workers_files_sum_to_the_server(tmp_path: Path) -> None:
    first = LiveDrift(profile(), window=100, shared=tmp_path)
    second = LiveDrift(profile(), window=100, shared=tmp_path)
    for _ in range(5):
        first.record(*request([0.5, 1.5], ["1", "7"]))
        second.record(*request([None, 3.5, 3.5], ["1", "7", "9"]))
    second.fold()  # what its thread does every second (first's scrape folds first)
    for drift in (first, second):  # whichever answers, the same server
        samples = scrape(drift)
        assert value(samples, "mlship_drift_workers") == 2
        assert value(samples, "mlship_drift_window_rows") == 25
        assert value(samples, "mlship_drift_null_values_total", feature="price") == 5
        assert value(samples, "mlship_drift_unseen_category_values_total", feature="store") == 5
    dead = tmp_path / f"{live.PREFIX}999999999-0000.npy"  # a worker gone: totals stay
    (tmp_path / first.ring.path.name).rename(dead)  # type: ignore[union-attr]
    samples = scrape(second)
    assert value(samples, "mlship_drift_workers") == 1
    assert value(samples, "mlship_drift_window_rows") == 15
    assert value(samples, "mlship_drift_rows_total") == 25


def settings(model_dir: Path, drift: str, workers: int = 1, shared: str | None = None) -> Any:
    return SimpleNamespace(model_dir=model_dir, workers=workers, drift=drift,
                           drift_window=500, drift_shared_dir=shared)  # fmt: skip


def test_auto_is_on_with_a_profile_off_without(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    (bare / "extra_files").mkdir(parents=True)
    assert open_live_drift(settings(bare, "auto")) is None
    assert prepare(settings(bare, "auto")) == (", no live drift (no reference profile)", {})
    with pytest.raises(MlshipError, match="--drift on: the model dir has no reference profile"):
        open_live_drift(settings(bare, "on"))
    with pytest.raises(MlshipError, match="--drift on"):
        prepare(settings(bare, "on"))
    write_profile(bare / "extra_files", profile())
    assert isinstance(open_live_drift(settings(bare, "auto")), LiveDrift)
    assert open_live_drift(settings(bare, "off")) is None
    # several workers without a shared folder would each answer for themselves: off
    assert open_live_drift(settings(bare, "auto", workers=2)) is None
    note, env = prepare(settings(bare, "auto", workers=2))
    assert note == ", live drift over 500 rows"
    folder = env[live.SHARED_DIR]
    try:
        assert Path(folder).is_dir()
        drift = open_live_drift(settings(bare, "auto", workers=2, shared=folder))
        assert drift is not None and drift.ring.path is not None
        assert drift.ring.path.parent == Path(folder)
    finally:
        shutil.rmtree(folder)


def test_the_queue_keeps_a_window_and_counts_the_rest_as_skipped() -> None:
    drift = LiveDrift(profile(), window=100)
    for _ in range(5):  # 240 shifted rows, then 240 like the reference: only the last matter
        drift.record(*request([3.5] * 48, ["1", "7"] * 24))
    for _ in range(5):
        drift.record(*request([0.5, 1.5, 2.5, 3.5] * 12, ["1", "7"] * 24))
    samples = scrape(drift)
    binned = value(samples, "mlship_drift_rows_total")
    assert binned + value(samples, "mlship_drift_skipped_rows_total") == 480
    assert binned < 480 and value(samples, "mlship_drift_window_rows") <= 100
    assert value(samples, "mlship_drift_psi", feature="price") < 0.01  # the shift is gone
