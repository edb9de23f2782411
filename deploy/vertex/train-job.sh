#!/usr/bin/env bash
# Run `mlship train --env ENV` as a Vertex AI custom job in the training image, as the trainer
# service account, and wait for it. Tracking goes to the environment's MLflow server on Cloud
# Run, which wants a Google ID token: the job fetches one from the metadata server first.
#
#   deploy/vertex/train-job.sh ENV IMAGE
#
# Env: GCP_PROJECT, GCP_REGION, TRAINER_SA, MLFLOW_TRACKING_URI; MACHINE_TYPE (n1-standard-4).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ENV IMAGE" >&2; exit 2; }
ENV_NAME="$1" IMAGE="$2"
: "${GCP_PROJECT:?}" "${GCP_REGION:?}" "${TRAINER_SA:?}" "${MLFLOW_TRACKING_URI:?}"
MACHINE_TYPE="${MACHINE_TYPE:-n1-standard-4}"
CONFIG="$(mktemp --suffix .yaml)"
trap 'rm -f "$CONFIG"' EXIT

# The ID token is fetched inside the job (valid one hour, longer than a training run).
cat >"$CONFIG" <<YAML
workerPoolSpecs:
  - machineSpec:
      machineType: ${MACHINE_TYPE}
    replicaCount: 1
    containerSpec:
      imageUri: ${IMAGE}
      command: ["sh", "-c"]
      args:
        - >-
          export MLFLOW_TRACKING_TOKEN="\$(python -c 'import urllib.request as u;
          r = u.Request("http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity?audience=${MLFLOW_TRACKING_URI}",
          headers={"Metadata-Flavor": "Google"}); print(u.urlopen(r).read().decode())')"
          && exec mlship train --env ${ENV_NAME}
      env:
        - name: MLFLOW_TRACKING_URI
          value: ${MLFLOW_TRACKING_URI}
        - name: MLSHIP_ENV
          value: ${ENV_NAME}
serviceAccount: ${TRAINER_SA}
YAML

job="$(gcloud ai custom-jobs create --project "$GCP_PROJECT" --region "$GCP_REGION" \
    --display-name "mlship-train-${ENV_NAME}-$(date +%Y%m%d-%H%M%S)" \
    --config "$CONFIG" --labels "app=mlship,env=${ENV_NAME}" --format 'value(name)')"
echo "started $job"
while :; do
    state="$(gcloud ai custom-jobs describe "$job" --region "$GCP_REGION" --format 'value(state)')"
    case "$state" in
        JOB_STATE_SUCCEEDED) echo "training succeeded"; exit 0 ;;
        JOB_STATE_FAILED|JOB_STATE_CANCELLED|JOB_STATE_EXPIRED)
            gcloud ai custom-jobs describe "$job" --region "$GCP_REGION" --format 'value(error.message)' >&2
            echo "training ended in $state" >&2; exit 1 ;;
    esac
    sleep 30
done
