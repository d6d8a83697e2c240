#!/usr/bin/env bash
# Run test suites again and again under CPU load, to find the tests that fail by chance before CI
# does. Not part of CI: a tool for whoever changes the test infrastructure.
# Usage: scripts/soak.sh [-n RUNS] [-l CPU_HOGS] [pytest paths or arguments...]
#   default: 50 runs of the suites that have flaked before, with `stress-ng --cpu 2` beside them.
# Prints one line per run and a closing count; the log of every failed run stays in $SOAK_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=50
hogs=2
while getopts "n:l:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    l) hogs=$OPTARG ;;
    *) echo "usage: $0 [-n RUNS] [-l CPU_HOGS] [pytest arguments...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- tests/proxy tests/hostile/test_ssrf.py tests/core/test_web.py tests/e2e

if [ "$hogs" -gt 0 ] && ! command -v stress-ng >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stress-ng >/dev/null
fi
[ -x .venv/bin/python ] || { echo "run scripts/test.sh once first (it makes .venv)" >&2; exit 2; }

SOAK_DIR=${SOAK_DIR:-$(mktemp -d /tmp/soak.XXXXXX)}
mkdir -p "$SOAK_DIR"  # a directory given that does not exist yet
load_pid=""
if [ "$hogs" -gt 0 ]; then
  stress-ng --cpu "$hogs" --quiet &
  load_pid=$!
fi
trap '[ -z "$load_pid" ] || kill "$load_pid" 2>/dev/null; wait 2>/dev/null' EXIT

passed=0
failed=0
for i in $(seq 1 "$runs"); do
  log="$SOAK_DIR/run-$i.log"
  start=$(date +%s)
  if .venv/bin/python -m pytest -p no:cacheprovider -q "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    rm -f "$log"
    echo "run $i: passed ($(($(date +%s) - start)) s)"
  else
    failed=$((failed + 1))
    echo "run $i: FAILED ($(($(date +%s) - start)) s): $log"
    grep -E '^(FAILED|ERROR) ' "$log" | head -n 5 || true
  fi
done
echo "soak: $runs runs of $*, load ${hogs} CPU hogs: $passed runs passed, $failed runs failed"
[ "$failed" -eq 0 ]
