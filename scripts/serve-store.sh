#!/usr/bin/env bash
# A Chroma server for store.url, shared by app replicas and ingest workers (README: "Several replicas").
#   scripts/serve-store.sh [DATA_DIR]        default data/chroma-server; PORT (8000) and HOST (127.0.0.1) from env
# HOST=0.0.0.0 lets other machines connect: Chroma has no authentication, so keep it on a private network.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-data/chroma-server}
CHROMA=${CHROMA:-.venv/bin/chroma}
[ -x "$CHROMA" ] || CHROMA=$(command -v chroma) || { echo "chroma not found: run 'make install' first" >&2; exit 1; }
mkdir -p "$DATA_DIR"
export ANONYMIZED_TELEMETRY=False  # no usage reports (the Rust server sends no traces unless OTEL is configured)
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
echo "Chroma server on http://${HOST:-127.0.0.1}:${PORT:-8000}, data in $DATA_DIR; set store.url (RAG_STORE__URL) to it" >&2
exec "$CHROMA" run --path "$DATA_DIR" --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
