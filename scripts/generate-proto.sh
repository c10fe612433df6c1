#!/usr/bin/env bash
# Regenerates Sources/PlexWire/Generated from proto/plexspaces/v1/*.proto.
# Uses protoc from Debian's protobuf-compiler and protoc-gen-swift built in release from the
# swift-protobuf checkout this package depends on (no build plugin: that would compile protoc from C++).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
  apt-get update -qq && apt-get install -y -qq protobuf-compiler
fi
swift package resolve >/dev/null
scratch=.build-protoc-gen-swift
swift build -c release --package-path .build/checkouts/swift-protobuf --scratch-path "$scratch" \
  --product protoc-gen-swift >&2
plugin="$scratch/release/protoc-gen-swift"
out=Sources/PlexWire/Generated
mkdir -p "$out"
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" --swift_out="$out" --swift_opt=Visibility=Public \
  --swift_opt=FileNaming=DropPath --swift_opt=UseAccessLevelOnImports=true -I proto proto/plexspaces/v1/*.proto
echo "generated: $(ls "$out")"
