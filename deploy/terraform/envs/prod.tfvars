# prod: warm instances, regional (HA) database, deletion protection on.
project_id           = "mlship-prod"
env                  = "prod"
github_repository    = "mlship/mlship"
scorer_image         = "europe-west1-docker.pkg.dev/mlship-prod/mlship/oj-purchase:1"
mlflow_image         = "europe-west1-docker.pkg.dev/mlship-prod/mlship/mlflow:3.17.2"
scorer_min_instances = 2
scorer_max_instances = 10
scorer_cpu           = "2"
scorer_memory        = "2Gi"
db_tier              = "db-custom-2-7680"
db_high_availability = true
deletion_protection  = true
scorer_invokers      = ["serviceAccount:checkout-api@mlship-prod.iam.gserviceaccount.com"]
mlflow_users         = ["group:mlship-ml-leads@example.com"]
# VM target: off (prod scores on Cloud Run). Set vm_enabled = true to add VMs running the
# same image on Container-Optimized OS, sized here: a VM per zone at least.
vm_enabled      = false
vm_boot         = "container"
vm_machine_type = "e2-standard-4"
vm_workers      = 4
vm_min_replicas = 3
vm_max_replicas = 9
