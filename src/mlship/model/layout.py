"""The files of a saved model dir and the format version this mlship writes.

A model dir is an MLflow model directory (``MLmodel``, the pickled pipeline, signature, input
example, requirements) plus mlship's own files::

    MLmodel                         MLflow's model spec: flavors, signature, metadata
    model.pkl                       the fitted scikit-learn pipeline
    mlship.json                     identity: format version, mlship version, registry name,
                                    version, run id, holdout metrics
    metrics.json, config.yaml       holdout metrics and the resolved training config
    extra_files/model.onnx          the compiled twin (when it converts)
    extra_files/onnx_parity.json    its parity report; the twin is used only if it passed

Format history: 0 -- dirs written before the format was versioned (no ``format_version`` in
``mlship.json``), read as 1; 1 -- the current layout.
"""

from __future__ import annotations

FORMAT_VERSION = 1
KNOWN_FORMATS = frozenset({0, 1})

MLMODEL = "MLmodel"
INFO = "mlship.json"
METRICS = "metrics.json"
CONFIG = "config.yaml"
ONNX = "extra_files/model.onnx"
PARITY = "extra_files/onnx_parity.json"
# Reserved for the integrity manifest (SHA-256 of every file), written last at export.
MANIFEST = "manifest.json"

RUNTIMES = ("auto", "onnx", "sklearn")
