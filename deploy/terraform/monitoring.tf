# Watching the model in production (docs/monitoring.md):
#
#   requests bucket   the scorer's request log (mlship serve --log-requests), one prefix per
#                     model: gs://<project>-requests/<model>/requests-<UTC time>-...csv. The
#                     scorer mounts the bucket as a volume (services.tf) and logs to a folder
#                     in it: the serving images carry no pyarrow (so CSV, not Parquet) and no
#                     fsspec/gcsfs (so a folder, not a gs:// URI).
#   monitor account   .github/workflows/monitor.yml: reads that bucket, calls the MLflow
#                     server; nothing else (no deploy, no images, no Vertex AI)
#   monitor pool      Workload Identity for that workflow only. It runs every day without a
#                     reviewer, so it cannot use the deployer's pool: that pool trusts the
#                     environment (prod: required reviewers) and may act as the deployer.
#                     This one trusts only the GitHub Environment "<env>-monitor" and may act
#                     only as the monitor account.

resource "google_storage_bucket" "requests" {
  name                        = "${var.project_id}-requests"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  # Files are never rewritten (unique names); versioning only keeps what a mistake deletes.
  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.logs.name
  }

  # Logged requests hold the callers' feature values: keep them as long as monitoring needs.
  lifecycle_rule {
    condition {
      age = var.request_log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # A renamed file leaves its hidden temporary name behind as a noncurrent version: a week.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}

# The scorer writes through Cloud Storage FUSE, which looks objects up (get, list) and renames
# the finished file (copy, then delete the hidden temporary one): object user, on this bucket
# only. Versioning keeps what a delete removes, for as long as the lifecycle rules say.
resource "google_storage_bucket_iam_member" "scorer_writes_requests" {
  bucket = google_storage_bucket.requests.name
  role   = "roles/storage.objectUser"
  member = google_service_account.scorer.member
}

resource "google_service_account" "monitor" {
  account_id   = "mlship-monitor"
  display_name = "mlship drift monitoring from GitHub Actions (${var.env})"
}

resource "google_storage_bucket_iam_member" "monitor_reads_requests" {
  bucket = google_storage_bucket.requests.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.monitor.member
}

# mlship monitor exports models:/NAME@champion and logs its run through the MLflow server.
resource "google_cloud_run_v2_service_iam_member" "monitor_uses_mlflow" {
  name     = google_cloud_run_v2_service.mlflow.name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.monitor.member
}

resource "google_iam_workload_identity_pool" "github_monitor" {
  workload_identity_pool_id = "github-monitor"
  display_name              = "GitHub Actions: monitoring"
  depends_on                = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool_provider" "github_monitor" {
  # checkov:skip=CKV_GCP_125: false positive, as in github.tf: the condition pins the subject to one repository and its monitoring environment
  workload_identity_pool_id          = google_iam_workload_identity_pool.github_monitor.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-oidc"
  display_name                       = "GitHub OIDC (monitoring)"

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
  }
  attribute_condition = "assertion.sub == 'repo:${var.github_repository}:environment:${var.env}-monitor'"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "github_impersonates_monitor" {
  service_account_id = google_service_account.monitor.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github_monitor.name}/attribute.repository/${var.github_repository}"
}

locals {
  # Where monitor.yml reads the log; the scorer writes the same objects through its volume.
  request_log_uri = "gs://${google_storage_bucket.requests.name}/${var.model_name}/"
  # Off unless asked: logged rows hold the callers' feature values (docs/monitoring.md).
  request_logging   = var.request_log_sample_rate > 0
  request_log_mount = "/requests"
  request_log_env = local.request_logging ? {
    MLSHIP_LOG_REQUESTS    = "${local.request_log_mount}/${var.model_name}"
    MLSHIP_LOG_SAMPLE_RATE = tostring(var.request_log_sample_rate)
  } : {}
}
