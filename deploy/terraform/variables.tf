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

# --- the VM target (vm.tf) -------------------------------------------------------------------

variable "vm_enabled" {
  description = "Also serve from a regional managed instance group of VMs behind an internal load balancer."
  type        = bool
  # Every envs/*.tfvars sets it; true here so offline policy checks (checkov evaluates count
  # from defaults) see the VM resources.
  default = true
}

variable "vm_boot" {
  description = "What the VMs boot: container (the scoring image on Container-Optimized OS) or bundle (the offline bundle on Debian 12, from the bundles bucket)."
  type        = string
  default     = "container"

  validation {
    condition     = contains(["container", "bundle"], var.vm_boot)
    error_message = "vm_boot must be container or bundle."
  }
}

variable "vm_bundle_object" {
  description = "With vm_boot = bundle: object name of the bundle in the bundles bucket (mlship bundle --output ...)."
  type        = string
  default     = "oj-purchase/oj-purchase-1.tar.gz"
}

variable "vm_machine_type" {
  description = "Machine type of each scorer VM."
  type        = string
  default     = "e2-standard-2"
}

variable "vm_workers" {
  description = "uvicorn workers per VM (one per vCPU)."
  type        = number
  default     = 2
}

variable "vm_min_replicas" {
  description = "Fewest scorer VMs (the autoscaler's floor)."
  type        = number
  default     = 1
}

variable "vm_max_replicas" {
  description = "Most scorer VMs (the autoscaler's ceiling)."
  type        = number
  default     = 3
}

variable "vm_subnet_cidr" {
  description = "Subnet of the scorer VMs and their internal load balancer."
  type        = string
  default     = "10.10.1.0/24"
}

variable "vm_caller_ranges" {
  description = "Source ranges allowed to call the VMs' port 8888 (inside the VPC)."
  type        = list(string)
  default     = ["10.10.0.0/16"]
}

# --- monitoring (monitoring.tf) --------------------------------------------------------------

variable "request_log_sample_rate" {
  description = "Share of scored requests the Cloud Run scorer logs to the requests bucket (0: off), as CSV files through a Cloud Storage volume (docs/monitoring.md)."
  type        = number
  default     = 0

  validation {
    condition     = var.request_log_sample_rate >= 0 && var.request_log_sample_rate <= 1
    error_message = "request_log_sample_rate must be between 0 and 1."
  }
}

variable "request_log_retention_days" {
  description = "Days a logged request file is kept in the requests bucket."
  type        = number
  default     = 90
}
