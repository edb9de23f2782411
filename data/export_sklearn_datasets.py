"""Export two of scikit-learn's bundled datasets to CSV next to this script.

    python data/export_sklearn_datasets.py

Nothing is downloaded: both datasets ship inside the scikit-learn wheel, so the
output is the same on every machine (column order, names and values).

* diabetes.csv - regression, 442 rows, target column ``progression``
  (raw, unscaled feature values: ``load_diabetes(scaled=False)``).
* wine.csv     - multiclass classification, 178 rows, target column ``cultivar``
  with the string labels ``class_0`` / ``class_1`` / ``class_2``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.datasets import load_diabetes, load_wine

DATA_DIR = Path(__file__).resolve().parent


def diabetes_frame() -> pd.DataFrame:
    bunch = load_diabetes(as_frame=True, scaled=False)
    return bunch.frame.rename(columns={"target": "progression"})


def wine_frame() -> pd.DataFrame:
    bunch = load_wine(as_frame=True)
    frame = bunch.data.copy()
    frame["cultivar"] = [str(bunch.target_names[i]) for i in bunch.target]
    return frame


def main() -> None:
    for name, frame in (("diabetes", diabetes_frame()), ("wine", wine_frame())):
        path = DATA_DIR / f"{name}.csv"
        frame.to_csv(path, index=False, lineterminator="\n")
        print(f"wrote {path} ({len(frame)} rows x {frame.shape[1]} columns)")


if __name__ == "__main__":
    main()
