output "data_bucket" {
  description = "Training data bucket (data.uri = gs://<this>/...)."
  value       = google_storage_bucket.data.name
}

output "mlflow_artifacts_bucket" {
  description = "Where the MLflow server stores artifacts."
  value       = google_storage_bucket.mlflow_artifacts.name
}

output "image_registry" {
  description = "Artifact Registry path for images: <this>/<model name>:<version>."
  value       = local.registry
}

output "mlflow_url" {
  description = "MLflow tracking server (MLFLOW_TRACKING_URI; send an ID token as MLFLOW_TRACKING_TOKEN)."
  value       = google_cloud_run_v2_service.mlflow.uri
}

output "scorer_url" {
  description = "Scoring service base URL (POST /score)."
  value       = google_cloud_run_v2_service.scorer.uri
}

output "workload_identity_provider" {
  description = "For google-github-actions/auth: workload_identity_provider (GitHub variable GCP_WIF_PROVIDER)."
  value       = google_iam_workload_identity_pool_provider.github.name
}

output "deployer_service_account" {
  description = "For google-github-actions/auth: service_account (GitHub variable GCP_DEPLOYER_SA)."
  value       = google_service_account.deployer.email
}

output "trainer_service_account" {
  description = "Service account the Vertex AI training job runs as."
  value       = google_service_account.trainer.email
}

output "bundles_bucket" {
  description = "Where CD uploads offline bundles (mlship bundle) for the VM target."
  value       = google_storage_bucket.bundles.name
}

output "vm_scorer_address" {
  description = "With vm_enabled: internal load-balancer address of the scorer VMs (http://<this>:8888)."
  value       = one(google_compute_forwarding_rule.scorer[*].ip_address)
}

output "request_log_uri" {
  description = "Where the scorer logs requests (MLSHIP_LOG_REQUESTS) and monitor.yml reads them (GitHub variable REQUEST_LOG_URI)."
  value       = local.request_log_uri
}

output "monitor_workload_identity_provider" {
  description = "For monitor.yml: GCP_WIF_PROVIDER in the <env>-monitor GitHub Environment."
  value       = google_iam_workload_identity_pool_provider.github_monitor.name
}

output "monitor_service_account" {
  description = "For monitor.yml: GCP_MONITOR_SA in the <env>-monitor GitHub Environment."
  value       = google_service_account.monitor.email
}
