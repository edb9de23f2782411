# The scorer on plain Compute Engine VMs, for teams that need a VM (no container platform, an
# on-VM agent, a fixed egress IP, sole-tenant or GPU hosts):
#
#   instance template --> regional managed instance group (autohealing on GET /ready,
#   proactive rolling replacement, surge 3 / unavailable 0) --> internal passthrough load
#   balancer on :8888, reachable only from inside the VPC.
#
# var.vm_boot selects what each VM boots:
#   container  Container-Optimized OS; cloud-init writes a systemd unit that runs the scoring
#              image from Artifact Registry (the same image Cloud Run runs).
#   bundle     Debian 12; the startup script copies the offline bundle (`mlship bundle`) from
#              the bundles bucket and runs its install.sh: a venv under /opt/mlship, a
#              hardened systemd unit, no package index needed.
# A new image or bundle (var.scorer_image / var.vm_bundle_object) makes a new template, and
# the group replaces its VMs in a rolling update.

locals {
  vm_count = var.vm_enabled ? 1 : 0
  vm_port  = 8888
  vm_tag   = "${local.name}-scorer-vm"
  # Google's health checkers and the internal load balancer's probes come from these ranges.
  google_health_check_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
  vm_images = {
    container = "projects/cos-cloud/global/images/family/cos-stable"
    bundle    = "projects/debian-cloud/global/images/family/debian-12"
  }
  # container: cloud-init (COS runs it) writes and starts the unit; bundle: a startup script.
  vm_container_user_data = templatefile("${path.module}/templates/vm-container.cloud-init.yaml", {
    image    = var.scorer_image
    registry = "${var.region}-docker.pkg.dev"
    port     = local.vm_port
    workers  = var.vm_workers
  })
  vm_bundle_startup_script = templatefile("${path.module}/templates/vm-bundle-startup.sh", {
    bundle_uri = "gs://${google_storage_bucket.bundles.name}/${var.vm_bundle_object}"
    model      = var.model_name
  })
  vm_boot_metadata_key = var.vm_boot == "container" ? "user-data" : "startup-script"
  vm_boot_metadata     = var.vm_boot == "container" ? local.vm_container_user_data : local.vm_bundle_startup_script
}

# Offline deployment bundles (`mlship bundle ... --output FILE.tar.gz`), uploaded by CD.
resource "google_storage_bucket" "bundles" {
  name                        = "${var.project_id}-bundles"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.logs.name
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
    }
    action {
      type = "Delete"
    }
  }
}

# The VMs run as the scorer's account: they read bundles, and pull images (iam.tf).
resource "google_storage_bucket_iam_member" "scorer_reads_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.scorer.member
}

resource "google_storage_bucket_iam_member" "deployer_uploads_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.deployer.member
}

# No external IPs: Private Google Access reaches Cloud Storage and Artifact Registry.
resource "google_compute_subnetwork" "vm" {
  count                    = local.vm_count
  name                     = "${local.name}-vm"
  network                  = google_compute_network.vpc.id
  region                   = var.region
  ip_cidr_range            = var.vm_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "vm_health_checks" {
  count         = local.vm_count
  name          = "${local.name}-allow-scorer-health-checks"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  priority      = 1000
  source_ranges = local.google_health_check_ranges
  target_tags   = [local.vm_tag]

  allow {
    protocol = "tcp"
    ports    = [tostring(local.vm_port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "vm_callers" {
  count         = local.vm_count
  name          = "${local.name}-allow-scorer-callers"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  priority      = 1000
  source_ranges = var.vm_caller_ranges
  target_tags   = [local.vm_tag]

  allow {
    protocol = "tcp"
    ports    = [tostring(local.vm_port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_health_check" "vm_ready" {
  count               = local.vm_count
  name                = "${local.name}-scorer-ready"
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 3

  http_health_check {
    port         = local.vm_port
    request_path = "/ready"
  }

  log_config {
    enable = true
  }
}

resource "google_compute_instance_template" "scorer" {
  count                = local.vm_count
  name_prefix          = "${local.name}-scorer-${var.vm_boot}-"
  description          = "mlship scorer (${var.vm_boot}) for ${var.model_name}"
  machine_type         = var.vm_machine_type
  region               = var.region
  tags                 = [local.vm_tag]
  can_ip_forward       = false
  instance_description = "mlship scorer (${var.vm_boot})"
  labels               = { model = var.model_name, boot = var.vm_boot }

  disk {
    source_image = local.vm_images[var.vm_boot]
    disk_size_gb = 20
    disk_type    = "pd-balanced"
    boot         = true
    auto_delete  = true
  }

  # No access_config block: no external IP.
  network_interface {
    subnetwork = google_compute_subnetwork.vm[0].id
  }

  service_account {
    email  = google_service_account.scorer.email
    scopes = ["cloud-platform"] # what the account may do is IAM's call (iam.tf, above)
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    block-project-ssh-keys       = "true"
    enable-oslogin               = "TRUE"
    serial-port-enable           = "false"
    google-logging-enabled       = "true"
    (local.vm_boot_metadata_key) = local.vm_boot_metadata
  }

  scheduling {
    automatic_restart   = true
    on_host_maintenance = "MIGRATE"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_region_instance_group_manager" "scorer" {
  count              = local.vm_count
  name               = "${local.name}-scorer"
  base_instance_name = "${local.name}-scorer"
  region             = var.region

  version {
    instance_template = google_compute_instance_template.scorer[0].id
  }

  named_port {
    name = "http"
    port = local.vm_port
  }

  # Recreate a VM whose /ready fails; give a fresh one time to boot and load the model.
  auto_healing_policies {
    health_check      = google_compute_health_check.vm_ready[0].id
    initial_delay_sec = 300
  }

  # A new template rolls out by surging new VMs first: capacity never drops below target.
  # A regional group needs max_surge_fixed of 0 or at least its number of zones (3).
  update_policy {
    type                           = "PROACTIVE"
    minimal_action                 = "REPLACE"
    most_disruptive_allowed_action = "REPLACE"
    replacement_method             = "SUBSTITUTE"
    max_surge_fixed                = 3
    max_unavailable_fixed          = 0
  }

  # The autoscaler owns the size.
  lifecycle {
    ignore_changes = [target_size]
  }
}

resource "google_compute_region_autoscaler" "scorer" {
  count  = local.vm_count
  name   = "${local.name}-scorer"
  region = var.region
  target = google_compute_region_instance_group_manager.scorer[0].id

  autoscaling_policy {
    min_replicas    = var.vm_min_replicas
    max_replicas    = var.vm_max_replicas
    cooldown_period = 120

    cpu_utilization {
      target = 0.6
    }
  }
}

# Internal passthrough load balancer: callers inside the VPC use http://<address>:8888.
resource "google_compute_region_backend_service" "scorer" {
  count                 = local.vm_count
  name                  = "${local.name}-scorer-vm"
  region                = var.region
  protocol              = "TCP"
  load_balancing_scheme = "INTERNAL"
  health_checks         = [google_compute_health_check.vm_ready[0].id]

  backend {
    group          = google_compute_region_instance_group_manager.scorer[0].instance_group
    balancing_mode = "CONNECTION"
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

resource "google_compute_forwarding_rule" "scorer" {
  count                 = local.vm_count
  name                  = "${local.name}-scorer-vm"
  region                = var.region
  load_balancing_scheme = "INTERNAL"
  ip_protocol           = "TCP"
  ports                 = [tostring(local.vm_port)]
  backend_service       = google_compute_region_backend_service.scorer[0].id
  network               = google_compute_network.vpc.id
  subnetwork            = google_compute_subnetwork.vm[0].id
}
