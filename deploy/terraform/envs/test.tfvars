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
