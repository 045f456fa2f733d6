#!/usr/bin/env bash
# The test command (README: `npm test`). Installs what the tests need when it is missing, type-checks, runs tap.
#  - node_modules: `npm ci` when missing or older than package-lock.json (kept between runs otherwise).
#  - Debian packages the suites start for real (redis-server, postgresql, chromium): apt-get when run as root,
#    otherwise it stops and names what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "test: installing node modules (npm ci)"
  npm ci --no-audit --no-fund
fi

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing ${need[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test: missing system packages: ${need[*]}. Install them (Debian: sudo apt-get install ${need[*]}) and run again." >&2
    exit 1
  fi
fi

echo "test: type-checking (tsc --noEmit)"
npx tsc -p tsconfig.json --noEmit
echo "test: building dist/ (the CLI and examples run the built package)"
npx tsc -p tsconfig.build.json

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
npx tap "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
# A plain closing line CI can read: "N passed, N failed".
summary=$(grep -E '^# \{ total: ' "$out" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary"); pass=${pass:-0}
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary"); fail=${fail:-0}
[ "$status" -ne 0 ] && [ "$fail" = "0" ] && fail=1
# The failures again at the end, with their diagnostics, so a log that keeps only its tail still names them.
if [ "$fail" != "0" ]; then
  echo "test: failures (each 'not ok' line with its diagnostic block):"
  awk '/^[ ]*not ok /{print; show=1; n=0; next} show&&n<25{print; n++; if ($0 ~ /^[ ]*\.\.\.$/) show=0; next} {show=0}' "$out" | tail -n 200
fi
echo "$pass passed, $fail failed"
exit "$status"
