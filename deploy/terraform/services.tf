# Two Cloud Run services: the MLflow tracking server and the scorer. Both require IAM
# authentication (no public invoker binding): callers send a Google ID token.

resource "google_cloud_run_v2_service" "mlflow" {
  name                = "${local.name}-mlflow"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  depends_on          = [google_secret_manager_secret_iam_member.mlflow_reads_db_uri]

  template {
    service_account = google_service_account.mlflow.email

    scaling {
      min_instance_count = 0
      max_instance_count = 2
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = google_compute_network.vpc.id
        subnetwork = google_compute_subnetwork.run.id
      }
    }

    containers {
      image = var.mlflow_image
      # Requests arrive with the service's run.app host name; IAM guards who gets this far.
      args = ["--allowed-hosts", "*.run.app"]

      ports {
        container_port = 5000
      }
      env {
        name  = "MLFLOW_ARTIFACTS_DESTINATION"
        value = "gs://${google_storage_bucket.mlflow_artifacts.name}"
      }
      env {
        name = "MLFLOW_BACKEND_STORE_URI"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.mlflow_db_uri.secret_id
            version = "latest"
          }
        }
      }
      resources {
        limits = {
          cpu    = "1"
          memory = "2Gi"
        }
      }
      startup_probe {
        initial_delay_seconds = 5
        period_seconds        = 5
        failure_threshold     = 24
        http_get {
          path = "/health"
        }
      }
      liveness_probe {
        period_seconds = 30
        http_get {
          path = "/health"
        }
      }
    }
  }
}

resource "google_cloud_run_v2_service" "scorer" {
  name                = "${local.name}-scorer"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.scorer.email
    max_instance_request_concurrency = 40
    labels                           = { model = var.model_name }
    # A Cloud Storage volume (request logging) needs the second generation environment.
    execution_environment = local.request_logging ? "EXECUTION_ENVIRONMENT_GEN2" : null

    # The requests bucket as a folder (Cloud Storage FUSE), when request logging is on: the
    # serving images have neither pyarrow nor gcsfuse/fsspec, so the scorer logs CSV files to
    # a local folder, and this folder is the bucket (monitoring.tf). Each file is written
    # under a hidden name and renamed when whole; FUSE uploads a file when it is closed.
    dynamic "volumes" {
      for_each = local.request_logging ? [1] : []
      content {
        name = "requests"
        gcs {
          bucket    = google_storage_bucket.requests.name
          read_only = false
        }
      }
    }

    scaling {
      min_instance_count = var.scorer_min_instances
      max_instance_count = var.scorer_max_instances
    }

    containers {
      image = var.scorer_image
      # One uvicorn worker per vCPU, one math-library thread per worker.
      args = ["--workers", var.scorer_cpu, "--threads", "1"]

      # Cloud Run passes this as PORT, which the image listens on.
      ports {
        container_port = 8888
      }
      # Cloud Run stops routing to an instance, then sends SIGTERM and SIGKILLs it 10 s later
      # (no preStop hook, no longer budget). The scorer's drain after SIGTERM (ready -> 503,
      # finish in-flight requests, exit 0) must end inside that: 8 s, not the 20 s default.
      env {
        name  = "MLSHIP_GRACE_SECONDS"
        value = "8"
      }
      # Request logging to the requests bucket (monitoring.tf), when request_log_sample_rate > 0.
      dynamic "env" {
        for_each = local.request_log_env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "volume_mounts" {
        for_each = local.request_logging ? [1] : []
        content {
          name       = "requests"
          mount_path = local.request_log_mount
        }
      }
      resources {
        limits = {
          cpu    = var.scorer_cpu
          memory = var.scorer_memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }
      startup_probe {
        period_seconds    = 2
        failure_threshold = 30
        http_get {
          path = "/ready"
        }
      }
      liveness_probe {
        period_seconds = 15
        http_get {
          path = "/health"
        }
      }
    }
  }

  # cd.yml deploys new images (gcloud run deploy --image ...@sha256:...); terraform owns the
  # rest of the service and must not roll the image back to var.scorer_image.
  lifecycle {
    ignore_changes = [template[0].containers[0].image, client, client_version]
  }
}
