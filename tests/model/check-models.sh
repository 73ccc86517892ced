#!/usr/bin/env bash
#
# check-models.sh: model-check the wake-up protocol and BH scheduling with
# spin, and check that every deliberately broken variant is rejected.
#
# Usage: tests/model/check-models.sh [--full] [-j JOBS] [--keep]
#   --full   also run the larger configurations (a few minutes)
#   -j JOBS  checks to run at once (default: number of CPUs, at most 2)
#   --keep   keep the work directory (pan sources, outputs, trails)
#
# Each check runs `spin -a`, compiles pan.c and runs an exhaustive search
# (no partial order reduction, no bitstate).  A correct configuration
# must finish with "errors: 0"; a broken one must report an error, and the
# error must be the assertion that names the property it breaks.  One line
# per check; exit status 0 if every outcome is the expected one, 1 if not,
# 77 (meson's "skipped") if spin or a C compiler is missing.
# Environment: SPIN (spin binary), CC (C compiler for pan.c).

set -u

here=$(cd "$(dirname "$0")" && pwd)
full=0
keep=0
njobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
[ "$njobs" -gt 2 ] && njobs=2

while [ $# -gt 0 ]; do
    case $1 in
    --full) full=1 ;;
    --keep) keep=1 ;;
    -j) shift; njobs=${1:?-j needs a number} ;;
    -j*) njobs=${1#-j} ;;
    -h|--help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-models: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

spin=${SPIN:-spin}
if ! command -v "$spin" >/dev/null 2>&1; then
    echo "check-models: SKIP: spin not found (Debian package 'spin');" \
         "the Promela models in tests/model were not checked"
    exit 77
fi
cc=${CC:-}
if [ -z "$cc" ]; then
    for c in gcc cc clang; do
        if command -v "$c" >/dev/null 2>&1; then
            cc=$c
            break
        fi
    done
fi
if [ -z "$cc" ]; then
    echo "check-models: SKIP: no C compiler to build spin's pan.c"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/qaio-model.XXXXXX") || exit 1
if [ "$keep" = 1 ]; then
    echo "check-models: work directory $work"
else
    trap 'rm -rf "$work"' EXIT
fi
trap 'kill $(jobs -p) 2>/dev/null; exit 1' INT TERM

# The checks.  add NAME MODEL FLAGS EXPECT PATTERN PROPERTY:
#   EXPECT pass: the exhaustive search must end with "errors: 0";
#   EXPECT fail: pan must report an error whose line contains PATTERN.
checks=()
add()
{
    checks+=("$1@$2@$3@$4@$5@$6")
}

lost='assertion violated (producers_done=='
twice_n='assertion violated  !((((bh_list|bh_local)|bh_slice)'
twice_b='assertion violated  !(((((bh_list|bh_local)|bh_slice[1])|bh_slice[2])'

add notify-correct aio-notify "-DGSOURCE -DNONBLOCKING" pass "" \
    "no lost wake-up, no BH lost or run twice, valid end states"
add notify-shared-bh aio-notify "-DSHARED_BH" pass "" \
    "the same with both producers scheduling one BH (idempotence races)"
add notify-accept-late aio-notify "-DGSOURCE -DBUG_ACCEPT_LATE" pass "" \
    "benign: accepting after reading the BH list loses nothing here (README)"
add notify-poll-no-mb aio-notify "-DBUG_POLL_NO_MB" fail "$lost" \
    "lost wake-up without smp_mb() after notify_me += 2 in aio_poll"
add notify-notify-no-mb aio-notify "-DBUG_NOTIFY_NO_MB" fail "$lost" \
    "lost wake-up without smp_mb() after setting notified in aio_notify"
add notify-prepare-no-mb aio-notify "-DGSOURCE -DBUG_PREPARE_NO_MB" fail \
    "$lost" "lost wake-up without smp_mb() in aio_ctx_prepare"
add notify-accept-no-mb aio-notify "-DBUG_ACCEPT_NO_MB" fail "$lost" \
    "lost wake-up without smp_mb() in aio_notify_accept"
add notify-skip-set aio-notify "-DGSOURCE -DBUG_SKIP_SET" fail "$lost" \
    "lost wake-up if aio_notify skips event_notifier_set when notified"
add notify-push-always aio-notify "-DSHARED_BH -DBUG_PUSH_ALWAYS" fail \
    "$twice_n" "BH on two lists if aio_bh_enqueue ignores BH_PENDING"
add notify-timeout-skips-local aio-notify "-DBUG_TIMEOUT_SKIPS_LOCAL" fail \
    "assertion violated (done_gen[i]==sched_gen[i])" \
    "BH lost if aio_compute_timeout does not look at bh_local"
add bh-correct aio-bh "" pass "" \
    "no BH lost/run twice/on two lists, next-call rule, nested drain"
add bh-push-always aio-bh "-DBUG_PUSH_ALWAYS" fail "$twice_b" \
    "BH on two lists if aio_bh_enqueue ignores BH_PENDING"
add bh-clear-before-remove aio-bh "-DBUG_CLEAR_BEFORE_REMOVE" fail \
    "$twice_b" "BH on two lists if dequeue clears flags before unlinking"
add bh-nonatomic-steal aio-bh "-DBUG_NONATOMIC_STEAL" fail \
    "assertion violated ((done_gen[b]==sched_gen[b])" \
    "BH lost if the list is taken by a load and a store, not an xchg"
add bh-resteal aio-bh "-DBUG_RESTEAL" fail \
    "assertion violated  !((fresh[depth]" \
    "BH scheduled during aio_bh_poll runs in that call if it re-takes the list"
add bh-own-slice-only aio-bh "-DBUG_OWN_SLICE_ONLY" fail \
    "assertion violated (oblig[depth]==0)" \
    "nested aio_bh_poll returns with BHs pending if it skips outer slices"
add bh-local-ignores-pending aio-bh "-DBUG_LOCAL_IGNORES_PENDING" fail \
    "$twice_b" "BH on two lists if a self-reschedule ignores BH_PENDING"
add bh-nested-skips-local aio-bh "-DBUG_NESTED_SKIPS_LOCAL" fail \
    "assertion violated (oblig[depth]==0)" \
    "nested aio_bh_poll returns with BHs pending if it leaves bh_local"
if [ "$full" = 1 ]; then
    add notify-full-gsource-shared aio-notify "-DGSOURCE -DSHARED_BH" pass "" \
        "correct model, GSource and one shared BH"
    add notify-full-3-rounds aio-notify "-DGSOURCE -DROUNDS=3" pass "" \
        "correct model, 3 rounds"
    add notify-full-2-wakeups aio-notify "-DGSOURCE -DOTHER_WAKEUPS=2" pass \
        "" "correct model, two waits ended by other sources"
    add notify-full-accept-always aio-notify \
        "-DGSOURCE -DNONBLOCKING -DACCEPT_ALWAYS" pass "" \
        "correct model with QEMU's unconditional clear in aio_notify_accept"
    add notify-full-skip-set-aio-poll aio-notify \
        "-DNONBLOCKING -DSHARED_BH -DBUG_SKIP_SET" pass "" \
        "without GSource, aio_poll's notified re-check covers the skipped set"
fi

# run_check INDEX: writes $work/INDEX.result ("PASS|FAIL line").
run_check()
{
    local i=$1 name model flags expect pattern prop dir t0 t1 secs
    local errors states verdict detail opt
    IFS='@' read -r name model flags expect pattern prop <<<"${checks[$i]}"
    dir=$work/$i-$name
    mkdir -p "$dir"
    cp "$here/$model.pml" "$dir/"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    if ! (cd "$dir" && "$spin" -a $flags "$model.pml") >"$dir/spin.out" 2>&1;
    then
        echo "FAIL $name: spin -a $flags $model.pml failed:" \
             "$(head -3 "$dir/spin.out" | tr '\n' ' ')" >"$work/$i.result"
        return
    fi
    # a broken variant fails within a few thousand states: skip optimising
    opt=-O2
    [ "$expect" = fail ] && opt=-O0
    if ! (cd "$dir" && $cc $opt -w -DSAFETY -DNOREDUCE -o pan pan.c) \
            >"$dir/cc.out" 2>&1; then
        echo "FAIL $name: compiling pan.c failed:" \
             "$(head -3 "$dir/cc.out" | tr '\n' ' ')" >"$work/$i.result"
        return
    fi
    (cd "$dir" && ./pan -m100000) >"$dir/pan.out" 2>&1
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.out" | head -1)
    states=$(awk '/states, stored/ { print $1; exit }' "$dir/pan.out")
    detail="${states:-?} states, ${secs}s"
    verdict=FAIL
    if [ -z "$errors" ]; then
        detail="pan did not finish: $(tail -2 "$dir/pan.out" | tr '\n' ' ')"
    elif [ "$errors" = 0 ] && grep -q -e 'max search depth too small' \
            -e 'out of memory' -e 'Search not completed' "$dir/pan.out"; then
        detail="search incomplete ($detail)"
    elif [ "$expect" = pass ]; then
        if [ "$errors" = 0 ]; then
            verdict=PASS
        else
            detail="expected errors: 0, got $errors: $(grep -m1 -e \
                'violated' -e 'invalid end state' "$dir/pan.out") ($detail)"
        fi
    else
        if [ "$errors" != 0 ] && grep -qF -- "$pattern" "$dir/pan.out"; then
            verdict=PASS
            detail="rejected as expected, $detail"
        elif [ "$errors" = 0 ]; then
            detail="expected spin to reject it, got errors: 0 ($detail)"
        else
            detail="rejected for another reason: $(grep -m1 -e 'violated' \
                -e 'invalid end state' "$dir/pan.out") ($detail)"
        fi
    fi
    echo "$verdict $name: $prop [$detail]" >"$work/$i.result"
}

echo "check-models: $spin, $cc, ${#checks[@]} checks, $njobs at a time"
start=$(date +%s)
running=0
for i in "${!checks[@]}"; do
    if [ "$running" -ge "$njobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_check "$i" &
    running=$((running + 1))
done
wait

failed=0
for i in "${!checks[@]}"; do
    if [ -f "$work/$i.result" ]; then
        line=$(cat "$work/$i.result")
    else
        line="FAIL ${checks[$i]%%@*}: no result"
    fi
    echo "$line"
    case $line in
    PASS*) ;;
    *) failed=$((failed + 1)) ;;
    esac
done
echo "check-models: ${#checks[@]} checks, $failed unexpected," \
     "$(( $(date +%s) - start ))s"
if [ "$failed" != 0 ] && [ "$keep" = 0 ]; then
    # keep the evidence: pan.out and the trail of each check
    trap - EXIT
    echo "check-models: outputs kept in $work (replay a trail there with" \
         "spin -t -p FLAGS MODEL.pml)"
fi
[ "$failed" = 0 ]
