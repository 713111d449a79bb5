#!/usr/bin/env bash
# Upload a model version and gate it in one call; exit with the release report's code.
#
#   0 every gate passes   3 a gate fails   4 no gate fails but one lacks evidence   1 error
#
# Needs curl and jq. Settings (environment):
#   PLATFORM_URL    e.g. https://evals.example.org          (required)
#   PLATFORM_TOKEN  an API token with scopes upload,evaluate,report (required)
#   DATASETS        set versions of the suite, space separated, e.g. "pascal-s-test" (required)
#   MODEL_FILE, SPEC_FILE, FAMILY, VERSION   the candidate to upload, or
#   CANDIDATE       an already registered F:V / F:ALIAS instead of an upload
#   BASELINE        default: the family's production
#   GATE_KEY        idempotency key (default: this CI run's id, so a retried job reuses the gate)
#   POLL_SECONDS (5), TIMEOUT_SECONDS (7200)
set -euo pipefail

: "${PLATFORM_URL:?set PLATFORM_URL}" "${PLATFORM_TOKEN:?set PLATFORM_TOKEN}"
: "${DATASETS:?set DATASETS (space separated set versions)}"
KEY="${GATE_KEY:-${GITHUB_RUN_ID:-${CI_PIPELINE_ID:-}}}"
POLL="${POLL_SECONDS:-5}"
DEADLINE=$(( $(date +%s) + ${TIMEOUT_SECONDS:-7200} ))
AUTH=(-H "Authorization: Token ${PLATFORM_TOKEN}")
[ -n "$KEY" ] && AUTH+=(-H "Idempotency-Key: ${KEY}")

form=()
for set in $DATASETS; do form+=(-F "dataset=${set}"); done
[ -n "${BASELINE:-}" ] && form+=(-F "baseline=${BASELINE}")
if [ -n "${CANDIDATE:-}" ]; then
  form+=(-F "candidate=${CANDIDATE}")
else
  : "${MODEL_FILE:?set MODEL_FILE or CANDIDATE}" "${SPEC_FILE:?set SPEC_FILE}"
  : "${FAMILY:?set FAMILY}" "${VERSION:?set VERSION}"
  form+=(-F "family=${FAMILY}" -F "version=${VERSION}" -F "file=@${MODEL_FILE}"
         -F "spec=<${SPEC_FILE}")
fi

body=$(mktemp)
trap 'rm -f "$body"' EXIT
code=$(curl -sS -o "$body" -w '%{http_code}' "${AUTH[@]}" "${form[@]}" \
  "${PLATFORM_URL%/}/releases/api/gate/")
if [ "$code" != 202 ] && [ "$code" != 200 ]; then
  echo "gate request refused (HTTP $code): $(jq -c . "$body" 2>/dev/null || cat "$body")" >&2
  exit 1
fi
url=$(jq -r .url "$body")
echo "gate $(jq -r .id "$body"): $url"

while :; do
  code=$(curl -sS -o "$body" -w '%{http_code}' -H "Authorization: Token ${PLATFORM_TOKEN}" "$url")
  [ "$code" = 200 ] || { echo "poll failed (HTTP $code): $(cat "$body")" >&2; exit 1; }
  status=$(jq -r .status "$body")
  case "$status" in
    done|failed) break ;;
  esac
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    echo "gave up waiting; the gate goes on: $url" >&2
    exit 1
  fi
  sleep "$POLL"
done

if [ "$status" = failed ]; then
  echo "gate failed: $(jq -r .error "$body")" >&2
  exit 1
fi
echo "verdict: $(jq -r .verdict "$body")  report: $(jq -r .report_url "$body")"
jq -r '.failing[] | "  [\(.status)] \(.name)\(if .dataset then " [\(.dataset)]" else "" end): \(.text)"' "$body"
exit "$(jq -r .exit_code "$body")"
