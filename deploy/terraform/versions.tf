terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.10"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State in a GCS bucket per environment, created once by hand (bootstrap):
  #   terraform init -backend-config="bucket=mlship-<env>-tfstate"
  backend "gcs" {
    prefix = "mlship"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}
