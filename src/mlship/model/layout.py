"""The files of a saved model dir and the format version this mlship writes.

A model dir is an MLflow model directory (``MLmodel``, the pickled pipeline, signature, input
example, requirements) plus mlship's own files::

    MLmodel                         MLflow's model spec: flavors, signature, metadata
    model.pkl                       the fitted scikit-learn pipeline
    code/mlship_pyfunc.py           MLflow's python_function loader (with code/mlship_columns.py):
                                    plain ``mlflow.pyfunc`` coerces and answers as mlship does
    mlship.json                     identity: format version, mlship version, registry name,
                                    version, run id, holdout metrics
    metrics.json, config.yaml       holdout metrics and the resolved training config
    extra_files/model.onnx          the compiled twin (when it converts)
    extra_files/onnx_parity.json    its parity report; the twin is used only if it passed
    extra_files/trees.so            a tree model's trees compiled to native code (``model.trees``,
    extra_files/trees_input.onnx    when the algorithm compiles): the library, the twin cut at
    extra_files/trees.json          the trees' input, and the library's parity and platform
    extra_files/profile.json        the reference profile (``model.profile``): training data's
                                    bins and the holdout's predictions, for ``mlship monitor``;
                                    absent from dirs written before it (still loadable)
    manifest.json                   size and SHA-256 of every other file, the format version,
                                    registry name, version and run id; written last

Format history: 0 -- dirs written before the format was versioned (no ``format_version`` in
``mlship.json``), read as 1, no manifest; 1 -- versioned, must carry a manifest; 2 -- adds
``code/`` (plain MLflow's loader) and a signature of ``any`` columns, each column's role read
from the metadata. Format 2 is a new number because a reader of 1 takes roles from the
signature's types and would read every column as a category; it refuses the dir in one line.
3 -- a binary classifier's metadata may carry ``decision_threshold`` (label ``positive_class``
iff its probability is at least that); a reader of 2 would ignore it and label by argmax, so
it refuses the dir. Dirs of 0-2 have no threshold: their labels stay the most probable class.
"""

from __future__ import annotations

FORMAT_VERSION = 3
KNOWN_FORMATS = frozenset({0, 1, 2, 3})

MLMODEL = "MLmodel"
INFO = "mlship.json"
METRICS = "metrics.json"
CONFIG = "config.yaml"
ONNX = "extra_files/model.onnx"
PARITY = "extra_files/onnx_parity.json"
PROFILE = "extra_files/profile.json"
TREES_LIB = "extra_files/trees.so"
TREES_INPUT = "extra_files/trees_input.onnx"
TREES_REPORT = "extra_files/trees.json"
# The integrity manifest (``model.manifest``), written last at export, verified at every load.
MANIFEST = "manifest.json"

RUNTIMES = ("auto", "onnx", "sklearn")
