import os, time
from tests.conftest import run_cli, train_args
from tests.services import closed_port_url
def test_probe(workdir, monkeypatch):
    if os.environ.get("FAST"):
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    t = time.time()
    r = run_cli(*train_args(workdir, f"tracking.uri={closed_port_url()}"))
    print("ELAPSED", time.time() - t, r.exit_code)
    print("STDERR", r.stderr)
    r = run_cli(*train_args(workdir, "data.uri=s3://mlship-no-bucket/x.csv", 'data.storage_options={"key":"a","secret":"b","client_kwargs":{"endpoint_url":"http://127.0.0.1:1"}}'))
    print("STDERR2", r.stderr[-600:])
