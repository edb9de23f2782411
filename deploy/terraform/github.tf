# Workload Identity Federation: GitHub Actions exchanges its OIDC token for short-lived
# credentials of the deployer account. No service-account keys exist anywhere.
# Only workflows of var.github_repository running in the GitHub Environment named like this
# GCP environment (dev, test, prod) are accepted, so prod credentials are issued only to jobs
# that passed the prod environment's required reviewers.

resource "google_iam_workload_identity_pool" "github" {
  workload_identity_pool_id = "github"
  display_name              = "GitHub Actions"
  depends_on                = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  # checkov:skip=CKV_GCP_125: false positive: checkov 3.2 evaluates the CEL string below as a boolean (False) before reading it; the condition pins the subject to one repository and environment, as that check asks
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-oidc"
  display_name                       = "GitHub OIDC"

  attribute_mapping = {
    "google.subject"         = "assertion.sub"
    "attribute.repository"   = "assertion.repository"
    "attribute.environment"  = "assertion.environment"
    "attribute.ref"          = "assertion.ref"
    "attribute.workflow_ref" = "assertion.job_workflow_ref"
  }
  # The subject of a job that declares `environment: <env>` is repo:<owner/name>:environment:<env>.
  attribute_condition = "assertion.sub == 'repo:${var.github_repository}:environment:${var.env}'"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "github_impersonates_deployer" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository/${var.github_repository}"
}
