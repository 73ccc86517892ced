#!/bin/sh
# qaio-bench's command line: every error with its exit status and its one
# line; a --count run with --verify on every engine this machine has (read
# and write, sequential and random, main thread and two IOThreads, page
# cache and O_DIRECT); --json parsed and its fields checked; --verify
# catching a corrupted request (QAIO_BENCH_CORRUPT); the temporary file
# left nowhere.  Nothing is timed: only statuses, messages, counts and data.
# Usage: test-qaio-bench.sh QAIO_BENCH WORK_DIR
set -u
bench=$1
work=$(mktemp -d "$2/qaio-bench-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/stdout
err=$work/stderr
data=$work/data
ntests=0
nfailed=0

pass() {
    ntests=$((ntests + 1))
    echo "ok $ntests - $1"
}

fail() {
    ntests=$((ntests + 1))
    nfailed=$((nfailed + 1))
    echo "not ok $ntests - $1"
    sed 's/^/#   stderr: /' "$err"
    head -c 2000 "$out" | sed 's/^/#   stdout: /'
}

# expect STATUS REGEX ARGS...: qaio-bench ARGS exits with STATUS, prints
# nothing on stdout and exactly one line on stderr, "qaio-bench: " then
# something matching the extended regex REGEX.
expect() {
    want=$1
    re=$2
    shift 2
    "$bench" "$@" >"$out" 2>"$err"
    got=$?
    what="qaio-bench $* -> $want /$re/"
    if [ "$got" -ne "$want" ]; then
        fail "$what (exit status $got)"
    elif [ "$(wc -l <"$err")" -ne 1 ]; then
        fail "$what (stderr is not one line)"
    elif ! grep -Eq "^qaio-bench: $re" "$err"; then
        fail "$what (message)"
    elif [ -s "$out" ]; then
        fail "$what (stdout not empty)"
    else
        pass "$what"
    fi
}

# run_ok DESCRIPTION ARGS...: exit status 0, nothing on stderr.
run_ok() {
    what=$1
    shift
    "$bench" "$@" >"$out" 2>"$err"
    got=$?
    if [ "$got" -ne 0 ] || [ -s "$err" ]; then
        fail "$what: qaio-bench $* (exit status $got)"
        return 1
    fi
    return 0
}

# check_json DESCRIPTION PYTHON_EXPRESSIONS: each expression (one a line,
# or more within brackets) must be true of j (the parsed stdout), r (its
# first run) and lat (r's latency_us).
check_json() {
    if python3 - "$out" "$2" >"$work/py" 2>&1 <<'PY'
import ast, json, sys
j = json.load(open(sys.argv[1]))
r = j["runs"][0]
lat = r.get("latency_us", {})
src = "\n".join(line.strip() for line in sys.argv[2].splitlines())
for node in ast.parse(src).body:
    if not eval(compile(ast.Expression(node.value), "check", "eval")):
        print("failed: " + ast.get_source_segment(src, node))
        sys.exit(1)
PY
    then
        pass "$1"
    else
        cp "$work/py" "$err"
        fail "$1"
    fi
}

# ---- Bad arguments: exit status 2 ----------------------------------------
expect 2 "bad option '--bogus'" --bogus
expect 2 "bad option '--json=1'" --json=1
expect 2 "option '--bs' needs an argument" --bs
expect 2 "--bs must be greater than 0" --bs 0
expect 2 "--bs: '4Q' is not a size" --bs 4Q
expect 2 "--bs: '-4K' is not a size" --bs -4K
expect 2 "--bs: '' is not a size" --bs ''
expect 2 "--bs must be greater than 0 and at most 64M" --bs 65M
expect 2 "--bs must be a multiple of 512 with --direct" --bs 1000 --direct
expect 2 "unknown engine 'posix'" --engine posix
expect 2 "unknown --rw 'sideways'" --rw sideways
expect 2 "--depth must be between 1 and" --depth 0
expect 2 "--depth: 'many' is not a number" --depth many
expect 2 "--count must be between 1 and" --count 0
expect 2 "--count: '1e3' is not a number" --count 1e3
expect 2 "--count and --time are mutually exclusive" --count 5 --time 1
expect 2 "--time must be a number of seconds" --time 0
expect 2 "--time must be a number of seconds" --time -1
expect 2 "--time must be a number of seconds" --time nan
expect 2 "--time must be a number of seconds" --time 3x
expect 2 "--iothreads must be between 0 and 64" --iothreads 65
expect 2 "--depth 2 is less than --iothreads 4" --depth 2 --iothreads 4
expect 2 "--poll-max-ns: '-5' is not a number" --poll-max-ns -5
expect 2 "--bs times --depth must be at most 4G" --bs 64M --depth 65
expect 2 "--verify needs an engine that moves data" --verify --engine null
expect 2 "one FILE only" a b

if "$bench" --help >"$out" 2>"$err" && grep -q '^Usage: qaio-bench' "$out" &&
   grep -q -- '--poll-max-ns' "$out" && ! [ -s "$err" ]; then
    pass "--help"
else
    fail "--help"
fi

# ---- Runtime errors: exit status 1 ---------------------------------------
head -c 1000 /dev/zero >"$work/small"
expect 1 ".*/nonexistent: No such file or directory" \
    --engine threads --count 1 "$work/nonexistent"
expect 1 ".*: is a directory" --engine threads --count 1 "$work"
expect 1 ".*/small: the file \(1000 bytes\) is smaller than --bs \(4096 bytes\)" \
    --engine threads --count 1 "$work/small"
# procfs has no O_DIRECT: open() says EINVAL, as on any such file system.
expect 1 "/proc/self/status: the file system refuses O_DIRECT" \
    --engine threads --direct --count 1 /proc/self/status
# The kernel "lacks" io_uring: qaio's switch makes ring creation fail.
head -c 8388608 /dev/zero >"$data"
QAIO_DISABLE_IO_URING=1 "$bench" --engine io_uring --count 1 "$data" \
    >"$out" 2>"$err"
if [ $? -eq 1 ] && grep -q '^qaio-bench: engine io_uring is unavailable: ' "$err"; then
    pass "QAIO_DISABLE_IO_URING=1: io_uring unavailable, exit status 1"
else
    fail "QAIO_DISABLE_IO_URING=1: io_uring unavailable, exit status 1"
fi

# ---- The engines this machine has -----------------------------------------
# Every engine in turn (no --engine) on the 8 MiB file: the list of runs
# says which are available; the rest are "unavailable" with a reason.
if run_ok "every engine" --count 64 --json "$data"; then
    check_json "every engine: one run each, in order, ok or unavailable" '
        [x["engine"] for x in j["runs"]] == ["threads", "linux-aio", "io_uring", "null"]
        all(x["status"] in ("ok", "unavailable") for x in j["runs"])
        all(x["requests"] == 64 for x in j["runs"] if x["status"] == "ok")
        all(x["reason"] for x in j["runs"] if x["status"] != "ok")
        j["runs"][3]["status"] == "ok"
        j["file"]["size"] == 8388608 and j["file"]["temporary"] is False
        j["workload"]["count"] == 64 and j["workload"]["time_s"] is None'
fi
engines=$(python3 -c '
import json, sys
print(" ".join(r["engine"] for r in json.load(open(sys.argv[1]))["runs"]
               if r["status"] == "ok" and r["engine"] != "null"))' "$out")
echo "# engines available here: $engines null"

# The table: a header, a line per engine, no stderr.
if run_ok "table" --count 64 "$data"; then
    if grep -q '^engine  *IOPS  *MiB/s' "$out" &&
       [ "$(sed '/^$/q' "$out" |
            grep -Ec '^(threads|linux-aio|io_uring|null) ')" -eq 4 ] &&
       grep -q '^loop  *iter/req  *BH/req' "$out"; then
        pass "table: header, one line per engine, loop metrics"
    else
        fail "table: header, one line per engine, loop metrics"
    fi
fi

# One engine, --verify, every workload, main thread and two IOThreads.
# Reads check every byte of each of the 300 requests; writes read back
# every block they wrote (300 distinct blocks when sequential).
for e in $engines; do
    for rw in randread read randwrite write; do
        for iot in 0 2; do
            what="$e $rw --iothreads $iot --verify"
            run_ok "$what" --engine "$e" --rw "$rw" --depth 8 --count 300 \
                --iothreads "$iot" --verify --json "$data" || continue
            # Random writes may hit a block twice: fewer blocks to check.
            case $rw in
            randwrite)
                verified='0 < r["verified_bytes"] <= 300 * 4096
                          r["verified_bytes"] % 4096 == 0' ;;
            *)
                verified='r["verified_bytes"] == 300 * 4096' ;;
            esac
            check_json "$what: counts, verified bytes, latency order" "
                len(j['runs']) == 1 and r['engine'] == '$e' and r['status'] == 'ok'
                r['requests'] == 300 and r['bytes'] == 300 * 4096
                $verified
                j['workload'] == {'rw': '$rw', 'bs': 4096, 'depth': 8,
                    'iothreads': $iot, 'count': 300, 'time_s': None,
                    'direct': False, 'poll_max_ns': None, 'verify': True}
                0 <= lat['min'] <= lat['p50'] <= lat['p99'] <= lat['p99_9'] <= lat['max']
                lat['min'] <= lat['mean'] <= lat['max']
                r['iops'] > 0 and r['mib_s'] > 0 and r['seconds'] > 0
                r['cpu_us_per_request'] >= 0"
        done
    done

    # O_DIRECT, where the build directory's file system allows it.
    if "$bench" --engine "$e" --direct --rw randread --count 1 "$data" \
        >"$out" 2>"$err"; then
        for rw in randread randwrite; do
            run_ok "$e $rw --direct --verify" --engine "$e" --rw "$rw" \
                --direct --bs 8K --depth 4 --count 200 --verify \
                --poll-max-ns 1000 --json "$data" &&
            check_json "$e $rw --direct --verify" "
                r['status'] == 'ok' and r['requests'] == 200
                j['workload']['direct'] is True and j['workload']['poll_max_ns'] == 1000
                r['verified_bytes'] > 0"
        done
    elif grep -q 'refuses O_DIRECT' "$err"; then
        echo "# $e: no O_DIRECT in $work's file system, skipped"
    else
        fail "$e --direct"
    fi

    # Sizes that are not a multiple of 8 or of the page: the pattern and
    # the offsets still line up.
    run_ok "$e read --bs 1000 --verify" --engine "$e" --rw read --bs 1000 \
        --depth 3 --count 50 --verify "$data"

    # --verify sees a spoiled request, read or written.  Sequential writes:
    # a random one could write the spoiled block again, correctly, before
    # the final check (about 1 run in 40).
    for rw in randread write; do
        QAIO_BENCH_CORRUPT=1 "$bench" --engine "$e" --rw "$rw" --count 100 \
            --verify "$data" >"$out" 2>"$err"
        if [ $? -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] &&
           grep -Eq "^qaio-bench: $e: verify failed.* at offset [0-9]+ \
(read|reads) 0x[0-9a-f]{2}, expected 0x[0-9a-f]{2}\$" "$err"; then
            pass "$e $rw: --verify catches a corrupted request"
        else
            fail "$e $rw: --verify catches a corrupted request"
        fi
    done
done

# The null engine needs no file; --count spreads over the IOThreads.
if run_ok "null, no file, 2 IOThreads" --engine null --count 1001 \
    --depth 5 --iothreads 2 --json; then
    check_json "null, no file, 2 IOThreads" '
        j["file"] is None and r["engine"] == "null" and r["status"] == "ok"
        r["requests"] == 1001 and r["verified_bytes"] == 0'
fi

# No FILE: a 1 GiB temporary file in $TMPDIR, gone afterwards.
first=${engines%% *}
if [ -n "$first" ]; then
    mkdir "$work/tmp"
    if TMPDIR=$work/tmp run_ok "temporary file" --engine "$first" \
        --count 100 --json; then
        check_json "temporary file: 1 GiB, temporary" '
            j["file"]["size"] == 1 << 30 and j["file"]["temporary"] is True
            "/tmp/qaio-bench." in j["file"]["path"]
            r["requests"] == 100'
        if [ -z "$(ls -A "$work/tmp")" ]; then
            pass "temporary file removed"
        else
            fail "temporary file removed"
        fi
    fi
fi

echo "$((ntests - nfailed)) passed, $nfailed failed"
[ "$nfailed" -eq 0 ]
