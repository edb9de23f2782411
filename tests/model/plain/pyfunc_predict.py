"""Score a table with plain MLflow: ``python pyfunc_predict.py <model dir> <table.json>``.

Runs in a venv holding only the model's own ``requirements.txt`` (MLflow, scikit-learn, ...),
never mlship. The table is ``{"columns": [...], "data": [[...], ...]}`` (pandas' split form,
so integers stay integers); prints the reply the same way, or ``{"error": "..."}``.
"""

import importlib.util
import json
import sys
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

if importlib.util.find_spec("mlship") is not None:
    sys.exit("mlship is importable here; this client must run without it")

model_dir, table = sys.argv[1], sys.argv[2]
split = json.loads(Path(table).read_text(encoding="utf-8"))
frame = pd.DataFrame(split["data"], columns=split["columns"])
model = mlflow.pyfunc.load_model(model_dir)
try:
    reply = model.predict(frame)
except Exception as exc:  # the test reads what a user would see
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
else:
    print(json.dumps({"columns": list(reply.columns), "data": reply.to_numpy().tolist()}))
