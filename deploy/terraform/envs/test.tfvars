# test: production-shaped but small; the CD workflow's smoke tests run against it.
project_id           = "mlship-test"
env                  = "test"
github_repository    = "mlship/mlship"
scorer_image         = "europe-west1-docker.pkg.dev/mlship-test/mlship/oj-purchase:1"
mlflow_image         = "europe-west1-docker.pkg.dev/mlship-test/mlship/mlflow:3.17.2"
scorer_min_instances = 1
scorer_max_instances = 3
db_tier              = "db-custom-1-3840"
deletion_protection  = true
mlflow_users         = ["group:mlship-developers@example.com"]
# VM target: the bundle path, production-shaped (autoscaled, rolling updates) but small.
vm_enabled       = true
vm_boot          = "bundle"
vm_bundle_object = "oj-purchase/oj-purchase-1.tar.gz"
vm_machine_type  = "e2-standard-2"
vm_workers       = 2
vm_min_replicas  = 1
vm_max_replicas  = 2
