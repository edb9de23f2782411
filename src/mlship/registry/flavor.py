"""How a model is logged so that plain MLflow scores it exactly as mlship does.

The logged model keeps MLflow's ``sklearn`` flavor (the pickled pipeline, which mlship's
runtimes load) but its ``python_function`` flavor points at mlship's own loader, shipped in the
model's ``code/`` dir (see ``mlship.scoring.pyfunc``): ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` then coerce values with mlship's rules and return probabilities. The
signature names every feature in model order with type ``any``: MLflow's own enforcement
refuses an int64 column where the signature says double (the raw training CSV), and would
otherwise never let the rows reach the coercion that accepts them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlship.scoring.columns
import mlship.scoring.pyfunc
from mlship.scoring.results import result_fields

LOADER_MODULE = "mlship_pyfunc"
_SRC = Path(mlship.scoring.columns.__file__).parents[1]
# Their names inside a model's code/ dir: top-level modules, importable without mlship. The
# XGBoost wrapper is a class the pickle names (``mlship.training.xgboost_model``); the loader
# maps that name to the copy (the file is copied, not imported: it needs xgboost).
CODE_FILES = {
    "mlship_pyfunc.py": Path(mlship.scoring.pyfunc.__file__),
    "mlship_columns.py": Path(mlship.scoring.columns.__file__),
    "mlship_xgboost.py": _SRC / "training" / "xgboost_model.py",
}


def model_signature(columns: list[str], classes: list[str], is_classifier: bool) -> Any:
    """Inputs in model order, each ``any`` and required (as mlship requires every column; the
    metadata's ``nullable`` says which may hold missing values), and mlship's outputs."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

    anything = AnyType()  # type: ignore[no-untyped-call]
    inputs = Schema([ColSpec(anything, name, required=True) for name in columns])
    kinds = {"string": DataType.string, "double": DataType.double}
    outputs = Schema(
        [ColSpec(kinds[kind], name) for name, kind in result_fields(classes, is_classifier)]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


class SklearnWithMlshipPyfunc:
    """A flavor for ``mlflow.models.Model.log``: ``mlflow.sklearn``'s, with our pyfunc loader."""

    __name__ = "mlflow.sklearn"  # what MLflow records as the logging flavor

    @staticmethod
    def save_model(path: str, mlflow_model: Any, **kwargs: Any) -> None:
        """Save as ``mlflow.sklearn`` does, add ``code/``, and name our loader in ``MLmodel``."""
        import mlflow.sklearn

        with tempfile.TemporaryDirectory(prefix="mlship-code-") as work:
            code = []
            for name, source in CODE_FILES.items():
                shutil.copyfile(source, Path(work) / name)
                code.append(str(Path(work) / name))
            mlflow.sklearn.save_model(
                path=path, mlflow_model=mlflow_model, code_paths=code, **kwargs
            )
        mlflow_model.flavors["python_function"]["loader_module"] = LOADER_MODULE
        mlflow_model.save(str(Path(path) / "MLmodel"))
