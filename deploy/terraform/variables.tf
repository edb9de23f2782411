variable "project_id" {
  description = "GCP project of this environment (one project per environment)."
  type        = string
}

variable "env" {
  description = "Environment name: dev, test or prod."
  type        = string

  validation {
    condition     = contains(["dev", "test", "prod"], var.env)
    error_message = "env must be dev, test or prod."
  }
}

variable "region" {
  description = "Region for every regional resource."
  type        = string
  default     = "europe-west1"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may deploy here."
  type        = string
  default     = "mlship/mlship"
}

variable "model_name" {
  description = "Registered model name; also the scoring image's name in Artifact Registry."
  type        = string
  default     = "oj-purchase"
}

variable "scorer_image" {
  description = "Initial scoring image. Later deploys change it (gcloud run deploy from cd.yml)."
  type        = string
}

variable "mlflow_image" {
  description = "MLflow server image (deploy/compose/mlflow/Dockerfile, pushed to Artifact Registry)."
  type        = string
}

variable "scorer_min_instances" {
  description = "Scorer instances kept warm (0 lets dev scale to zero)."
  type        = number
  default     = 0
}

variable "scorer_max_instances" {
  description = "Upper bound on scorer instances."
  type        = number
  default     = 3
}

variable "scorer_cpu" {
  description = "vCPUs per scorer instance (one uvicorn worker per vCPU)."
  type        = string
  default     = "1"
}

variable "scorer_memory" {
  description = "Memory per scorer instance."
  type        = string
  default     = "1Gi"
}

variable "scorer_invokers" {
  description = "Principals allowed to call the scorer (e.g. serviceAccount:app@..., group:...)."
  type        = list(string)
  default     = []
}

variable "mlflow_users" {
  description = "Principals (besides the trainer and CI) allowed to use the MLflow server."
  type        = list(string)
  default     = []
}

variable "db_tier" {
  description = "Cloud SQL machine tier for the MLflow backend store."
  type        = string
  default     = "db-custom-1-3840"
}

variable "db_high_availability" {
  description = "Regional (HA) Cloud SQL instance instead of zonal."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the database and buckets from terraform destroy."
  type        = bool
  default     = true
}
