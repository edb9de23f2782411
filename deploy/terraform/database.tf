# MLflow's backend store: Cloud SQL for PostgreSQL on a private IP, TLS only, backed up with
# point-in-time recovery. The connection URI (with its generated password) lives in Secret
# Manager and reaches the MLflow server as MLFLOW_BACKEND_STORE_URI.

resource "random_password" "mlflow_db" {
  length  = 32
  special = false
}

resource "google_sql_database_instance" "mlflow" {
  # checkov:skip=CKV_GCP_6: TLS is required (ssl_mode ENCRYPTED_ONLY) on a private IP reachable only from the VPC; client certificates (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) would need the Cloud SQL proxy in front of MLflow for no gain here
  name                = "${local.name}-mlflow"
  database_version    = "POSTGRES_17"
  region              = var.region
  deletion_protection = var.deletion_protection
  depends_on          = [google_service_networking_connection.sql]

  settings {
    tier              = var.db_tier
    availability_type = var.db_high_availability ? "REGIONAL" : "ZONAL"
    disk_autoresize   = true
    user_labels       = local.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = google_compute_network.vpc.id
      ssl_mode                                      = "ENCRYPTED_ONLY"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
    }

    insights_config {
      query_insights_enabled = true
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }
}

resource "google_sql_database" "mlflow" {
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow.name
}

resource "google_sql_user" "mlflow" {
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow.name
  password = random_password.mlflow_db.result
}

resource "google_secret_manager_secret" "mlflow_db_uri" {
  # checkov:skip=CKV_GCP_128: Google-managed encryption keys (see registry.tf on CMEK)
  secret_id = "${local.name}-mlflow-db-uri"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "mlflow_db_uri" {
  secret      = google_secret_manager_secret.mlflow_db_uri.id
  secret_data = "postgresql+psycopg2://${google_sql_user.mlflow.name}:${random_password.mlflow_db.result}@${google_sql_database_instance.mlflow.private_ip_address}:5432/${google_sql_database.mlflow.name}?sslmode=require"
}
