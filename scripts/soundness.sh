#!/usr/bin/env bash
# Style and hygiene checks (not part of .ci/run): format lint, a warnings-as-errors build, generated code
# and fixtures up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== swift format lint --strict"
swift format lint --strict --recursive Sources/PlexCore Sources/PlexWire/*.swift Sources/PlexTransport \
  Sources/PlexCluster Sources/PlexJournal Sources/PlexSpaces Sources/PlexExamples Sources/PlexTestKit Sources/plex \
  Sources/plex-bench Sources/PlexChaos Sources/plex-chaos \
  Tests Package.swift
echo "== build with warnings as errors"
swift build --build-tests -Xswiftc -warnings-as-errors
echo "== golden fixtures match scripts/generate-fixtures.py"
python3 scripts/generate-fixtures.py >/dev/null
git diff --exit-code -- proto/fixtures
if command -v protoc >/dev/null; then
  echo "== generated protobuf code matches proto/"
  scripts/generate-proto.sh >/dev/null
  git diff --exit-code -- Sources/PlexWire/Generated
fi
echo "soundness: ok"
