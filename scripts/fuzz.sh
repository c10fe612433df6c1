#!/usr/bin/env bash
# scripts/fuzz.sh TARGET [SECONDS]: coverage-guided fuzzing of one decoder with libFuzzer and AddressSanitizer.
# TARGET is frame, codec, control, handshake, json or http1 (Sources/plex-fuzz/FuzzTargets.swift). Builds plex-fuzz with
# -sanitize=fuzzer,address in .build-fuzz/ (a build of its own: the first one takes minutes), seeds the corpus
# with the golden fixtures (proto/fixtures) and the built-in seeds, and fuzzes for SECONDS (default 60).
# A crash is written to .build-fuzz/crashes/TARGET/ and the script exits non-zero; replay it in an ordinary
# build with `plex-fuzz TARGET FILE`, fix it, and add the file to proto/fixtures/fuzz/TARGET/ so the test
# command replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh frame|codec|control|handshake|json|http1 [SECONDS]}
seconds=${2:-60}
case "$target" in frame | codec | control | handshake | json | http1) ;; *)
  echo "scripts/fuzz.sh: unknown target '$target' (frame, codec, control, handshake, json, http1)" >&2
  exit 2
  ;;
esac
scratch=.build-fuzz
flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld -Xswiftc -DPLEX_FUZZ)
swift build --product plex-fuzz >&2
swift build --product plex-fuzz --scratch-path "$scratch" "${flags[@]}" >&2
fuzzer="$(swift build --scratch-path "$scratch" --show-bin-path)/plex-fuzz"
corpus=$scratch/corpus/$target
crashes=$scratch/crashes/$target
mkdir -p "$corpus" "$crashes"
cp proto/fixtures/*.bin "$corpus/"
if [ -d "proto/fixtures/fuzz/$target" ]; then cp "proto/fixtures/fuzz/$target"/* "$corpus/" 2>/dev/null || true; fi
"$(swift build --show-bin-path)/plex-fuzz" "$target" --write-seeds "$corpus"
echo "fuzzing $target for $seconds s (corpus $corpus, crashes to $crashes/)" >&2
PLEX_FUZZ_TARGET=$target "$fuzzer" "$corpus" -max_total_time="$seconds" -artifact_prefix="$crashes/" \
  -print_final_stats=1 -rss_limit_mb=2048
