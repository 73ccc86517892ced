#!/bin/sh
# Run every test of a build directory and end with one summary line,
# "N passed, N failed", exiting non-zero on any failure.
# Usage: scripts/run-tests.sh BUILD_DIR [meson test args...]
set -u
build=$1
shift
meson test -C "$build" --print-errorlogs "$@"
rc=$?
# meson names the log after the wrapper, if any (testlog-valgrind.json).
log=$(ls -t "$build"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
if [ -n "$log" ] && [ -f "$log" ]; then
    python3 - "$log" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get('result')
    if r in ('OK', 'EXPECTEDFAIL'):
        passed += 1
    elif r == 'SKIP':
        skipped += 1
    else:
        failed += 1
        # Repeat the end of each failure's output here, next to the
        # summary: CI logs are often read from the end, and meson printed
        # the error log far above.
        out = (t.get('stdout') or '').splitlines()
        print(f"--- {t.get('name')}: {r}, last {min(len(out), 80)} lines:")
        print('\n'.join(out[-80:]))
extra = f" ({skipped} skipped)" if skipped else ""
print(f"{passed} passed, {failed} failed{extra}")
PY
fi
exit $rc
