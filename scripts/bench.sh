#!/usr/bin/env bash
# Builds in release and runs the benchmark: one `name value unit` line per figure, medians of 3 runs.
# Not part of CI. Run it on a quiet machine; compare with ../shared/limits/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product plex-bench >&2
exec "$(swift build -c release --show-bin-path)/plex-bench" all "$@"
