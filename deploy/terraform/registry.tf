# Docker images: the scorer (one image name per model, tagged with the model version and the
# git sha), the training image and the MLflow server.
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption keys; CMEK would add a KMS key ring per environment for no data that is sensitive beyond the model itself
  repository_id = "mlship"
  location      = var.region
  format        = "DOCKER"
  description   = "mlship images: scorer, trainer, MLflow server"
  depends_on    = [google_project_service.apis]

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
}
