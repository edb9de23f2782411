# dev: scale to zero, small database, no deletion protection (it is rebuilt freely).
project_id           = "mlship-dev"
env                  = "dev"
github_repository    = "mlship/mlship"
scorer_image         = "europe-west1-docker.pkg.dev/mlship-dev/mlship/oj-purchase:1"
mlflow_image         = "europe-west1-docker.pkg.dev/mlship-dev/mlship/mlflow:3.17.2"
scorer_min_instances = 0
scorer_max_instances = 2
db_tier              = "db-custom-1-3840"
deletion_protection  = false
mlflow_users         = ["group:mlship-developers@example.com"]
# VM target: one small VM booting the offline bundle (mlship bundle), rebuilt freely.
vm_enabled       = true
vm_boot          = "bundle"
vm_bundle_object = "oj-purchase/oj-purchase-1.tar.gz"
vm_machine_type  = "e2-small"
vm_workers       = 1
vm_min_replicas  = 1
vm_max_replicas  = 1
