"""XGBoost's classifier with the labels scikit-learn estimators take (strings, any values).

``XGBClassifier`` fits only integer labels ``0..k-1``; this subclass encodes the labels on
``fit`` and decodes them on ``predict``, so it is a drop-in for the other classifiers of the
registry (``classes_`` holds the original labels, ``predict_proba`` columns follow them).
Imported only when ``model.name`` is ``xgboost`` (and when such a model is unpickled).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier


class XGBoostClassifier(XGBClassifier):
    """``XGBClassifier`` over encoded labels; ``classes_`` are the labels as given."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> XGBoostClassifier:  # noqa: N803
        encoder = LabelEncoder().fit(np.asarray(y))
        self.__dict__.pop("labels_", None)  # while XGBoost fits, classes_ is its 0..k-1
        super().fit(X, encoder.transform(np.asarray(y)), **kwargs)
        self.labels_ = encoder.classes_
        return self

    @property
    def classes_(self) -> np.ndarray:
        if "labels_" not in self.__dict__:
            return np.arange(self.n_classes_)
        return np.asarray(self.labels_)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:  # noqa: N803
        return np.asarray(self.labels_)[np.asarray(super().predict(X, **kwargs), dtype=np.int64)]
