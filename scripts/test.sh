#!/usr/bin/env bash
# Runs every test: unit, in-process cluster (in-memory and loopback TCP) and multi-process integration tests
# (which start real `plex node` processes and kill -9 them by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null; then
  echo "swift is not on PATH" >&2
  exit 1
fi
# PlexJournal links the system SQLite (Debian's libsqlite3-dev).
if [ ! -f /usr/include/sqlite3.h ]; then
  echo "installing libsqlite3-dev" >&2
  apt-get update -qq && apt-get install -y -qq libsqlite3-dev >&2
fi
# Every import must be a declared dependency; otherwise the build depends on parallel build order.
python3 scripts/check-imports.py
# The integration tests drive the built plex binary.
swift build --product plex
export PLEX_BIN="$(swift build --show-bin-path)/plex"
export PLEX_INTEGRATION=1
# The OCFL scenario's objects are checked by an independent validator: ocfl-py (PyPI), in a venv of our own.
if [ ! -x .build/ocfl-venv/bin/ocfl-validate.py ]; then
  echo "installing ocfl-py (the OCFL validator the tests use)" >&2
  python3 -m venv .build/ocfl-venv
  .build/ocfl-venv/bin/pip install -q ocfl-py==2.1.0 >&2
fi
export PLEX_OCFL_VALIDATE="$PWD/.build/ocfl-venv/bin/ocfl-validate.py"
# The dashboard is checked in a real headless browser: Debian's Chromium, driven by scripts/browser-check.py.
if ! command -v chromium >/dev/null; then
  echo "installing chromium (the dashboard's browser test)" >&2
  apt-get install -y -qq chromium >&2 || { apt-get update -qq && apt-get install -y -qq chromium >&2; }
fi
export PLEX_BROWSER_CHECK=1
# One test at a time (about 2 minutes): on a 2-core machine, 200 tests at once starve the nodes' heartbeats and
# turn the failure detector's judgement (1.5 s in tests) and every deadline into noise. (A width of 4 was not
# honoured by swift-testing 6.3: every test still started at once.)
swift test --experimental-maximum-parallelization-width 1 "$@"
# The fuzz targets (frame decoder, binary codec, control-plane bodies, handshake, JSON codec, HTTP/1.1 reader) over the golden fixtures, the
# inputs fuzzing once crashed on (proto/fixtures/fuzz/TARGET/), and 3 s of random mutations each. An ordinary
# build: scripts/fuzz.sh runs the same targets coverage-guided, with libFuzzer and AddressSanitizer.
if [ $# -eq 0 ]; then
  swift build --product plex-fuzz
  for target in frame codec control handshake json http1; do
    regressions=()
    if [ -d "proto/fixtures/fuzz/$target" ]; then regressions=("proto/fixtures/fuzz/$target"); fi
    "$(swift build --show-bin-path)/plex-fuzz" "$target" --seconds 3 proto/fixtures "${regressions[@]}"
  done
fi
# The chaos suite's short run (fixed seed, under 3 minutes): real nodes, kill -9, SIGSTOP, whole-cluster and
# seedless restarts, partitions; fails if an acknowledged deposit was lost, applied twice or forked.
if [ $# -eq 0 ]; then
  scripts/chaos.sh --short
fi
