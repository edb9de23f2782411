#!/usr/bin/env bash
# Upload the scoring image as a Vertex AI model (a new version of it) and deploy it to the
# environment's endpoint, taking all traffic. The alternative to the Cloud Run scorer.
#
#   deploy/vertex/deploy.sh ENV IMAGE_URI MODEL_VERSION
#   e.g. deploy/vertex/deploy.sh test europe-west1-docker.pkg.dev/p/mlship/oj-purchase:7 7
#
# Needs gcloud authenticated (in CI: google-github-actions/auth via Workload Identity
# Federation), GCP_PROJECT and GCP_REGION. The container contract (port, AIP_* routes) is in
# model.json, the machine and replica counts per environment in deployed-model.json.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 ENV IMAGE_URI MODEL_VERSION" >&2; exit 2; }
ENV_NAME="$1" IMAGE_URI="$2" MODEL_VERSION="$3"
: "${GCP_PROJECT:?set GCP_PROJECT}" "${GCP_REGION:?set GCP_REGION}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ENDPOINT="mlship-${ENV_NAME}"

spec() {  # spec FILE EXPR: evaluate a Python expression over the JSON file as `s`
    python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}
name="$(spec "$HERE/model.json" 's["displayName"]')"
port="$(spec "$HERE/model.json" 's["containerSpec"]["ports"][0]["containerPort"]')"
predict="$(spec "$HERE/model.json" 's["containerSpec"]["predictRoute"]')"
health="$(spec "$HERE/model.json" 's["containerSpec"]["healthRoute"]')"
res() { spec "$HERE/deployed-model.json" "s[\"$ENV_NAME\"][\"$1\"]"; }

parent="$(gcloud ai models list --project "$GCP_PROJECT" --region "$GCP_REGION" \
    --filter "displayName=$name" --format 'value(name)' --limit 1)"
model_id="$(gcloud ai models upload --project "$GCP_PROJECT" --region "$GCP_REGION" \
    --display-name "$name" ${parent:+--parent-model "$parent"} \
    --container-image-uri "$IMAGE_URI" --container-ports "$port" \
    --container-predict-route "$predict" --container-health-route "$health" \
    --labels "app=mlship,env=$ENV_NAME,model-version=$MODEL_VERSION" \
    --format 'value(model)')"
echo "uploaded $name version for $IMAGE_URI: $model_id"

endpoint_id="$(gcloud ai endpoints list --project "$GCP_PROJECT" --region "$GCP_REGION" \
    --filter "displayName=$ENDPOINT" --format 'value(name)' --limit 1)"
if [ -z "$endpoint_id" ]; then
    endpoint_id="$(gcloud ai endpoints create --project "$GCP_PROJECT" --region "$GCP_REGION" \
        --display-name "$ENDPOINT" --format 'value(name)')"
fi
gcloud ai endpoints deploy-model "$endpoint_id" --project "$GCP_PROJECT" --region "$GCP_REGION" \
    --model "$model_id" --display-name "$name-v$MODEL_VERSION" \
    --machine-type "$(res machineType)" \
    --min-replica-count "$(res minReplicaCount)" --max-replica-count "$(res maxReplicaCount)" \
    --autoscaling-metric-specs "cpu-usage=$(res cpuTargetPercent)" \
    --traffic-split 0=100
echo "deployed to endpoint $ENDPOINT ($endpoint_id)"
