# One service account per job, each granted only what that job touches, on the resource
# itself where GCP allows it (bucket, repository, service, secret) rather than the project.
#
#   trainer   Vertex AI custom job: read data, write MLflow artifacts, call the MLflow server
#   mlflow    MLflow server: its database secret, the artifacts bucket
#   scorer    the scoring service: nothing (the model is in the image); as the VM target
#             (vm.tf) it also reads the bundles bucket
#   deployer  GitHub Actions (through Workload Identity Federation): push images, run jobs,
#             deploy the scorer

resource "google_service_account" "trainer" {
  account_id   = "mlship-trainer"
  display_name = "mlship training jobs (${var.env})"
}

resource "google_service_account" "mlflow" {
  account_id   = "mlship-mlflow"
  display_name = "mlship MLflow tracking server (${var.env})"
}

resource "google_service_account" "scorer" {
  account_id   = "mlship-scorer"
  display_name = "mlship scoring service (${var.env})"
}

resource "google_service_account" "deployer" {
  account_id   = "mlship-deployer"
  display_name = "mlship CI/CD from GitHub Actions (${var.env})"
}

# --- buckets ---------------------------------------------------------------------------------
resource "google_storage_bucket_iam_member" "trainer_reads_data" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.trainer.member
}

resource "google_storage_bucket_iam_member" "mlflow_owns_artifacts" {
  bucket = google_storage_bucket.mlflow_artifacts.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.mlflow.member
}

# --- MLflow server ---------------------------------------------------------------------------
resource "google_secret_manager_secret_iam_member" "mlflow_reads_db_uri" {
  secret_id = google_secret_manager_secret.mlflow_db_uri.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.mlflow.member
}

resource "google_cloud_run_v2_service_iam_member" "mlflow_invokers" {
  for_each = toset(concat(
    [google_service_account.trainer.member, google_service_account.deployer.member],
    var.mlflow_users,
  ))
  name     = google_cloud_run_v2_service.mlflow.name
  location = var.region
  role     = "roles/run.invoker"
  member   = each.key
}

# --- scorer ----------------------------------------------------------------------------------
resource "google_cloud_run_v2_service_iam_member" "scorer_invokers" {
  for_each = toset(concat([google_service_account.deployer.member], var.scorer_invokers))
  name     = google_cloud_run_v2_service.scorer.name
  location = var.region
  role     = "roles/run.invoker"
  member   = each.key
}

# --- deployer (GitHub Actions) ---------------------------------------------------------------
resource "google_artifact_registry_repository_iam_member" "deployer_pushes_images" {
  repository = google_artifact_registry_repository.images.name
  location   = var.region
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.deployer.member
}

resource "google_artifact_registry_repository_iam_member" "runtime_pulls_images" {
  for_each = {
    trainer = google_service_account.trainer.member
    mlflow  = google_service_account.mlflow.member
    scorer  = google_service_account.scorer.member
  }
  repository = google_artifact_registry_repository.images.name
  location   = var.region
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

# Deploy new revisions of the scorer (not create or delete services).
resource "google_cloud_run_v2_service_iam_member" "deployer_deploys_scorer" {
  name     = google_cloud_run_v2_service.scorer.name
  location = var.region
  role     = "roles/run.developer"
  member   = google_service_account.deployer.member
}

# Start Vertex AI custom jobs and manage models/endpoints: project-level only in GCP.
resource "google_project_iam_member" "deployer_runs_vertex" {
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = google_service_account.deployer.member
}

# The deployer may run jobs and revisions *as* the trainer and scorer accounts, nothing else.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    trainer = google_service_account.trainer.name
    scorer  = google_service_account.scorer.name
  }
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

# Every runtime account writes its logs and metrics.
resource "google_project_iam_member" "runtime_telemetry" {
  for_each = {
    for pair in setproduct(
      ["roles/logging.logWriter", "roles/monitoring.metricWriter"],
      ["trainer", "mlflow", "scorer"],
    ) : "${pair[1]}-${pair[0]}" => pair
  }
  project = var.project_id
  role    = each.value[0]
  member = {
    trainer = google_service_account.trainer.member
    mlflow  = google_service_account.mlflow.member
    scorer  = google_service_account.scorer.member
  }[each.value[1]]
}
