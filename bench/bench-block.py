#!/usr/bin/env python3
"""bench/bench-block.py: qaio-bench against fio and `qemu-img bench`.

Runs the same block I/O workload through qaio-bench and through the tools a
user would otherwise measure with, in the same invocation, interleaved
(run 1 of every tool, then run 2, ...; within a run qaio and its peer back
to back, the order alternating), and prints one table of medians, spreads
and the median of the per-run ratios.  Writes every sample to bench/results/block.json.

Workloads (O_DIRECT, 4 KiB, one file):
  - random reads and writes at queue depth 1, 16 and 64 for each engine,
    against fio with the same engine: threads -> fio's posixaio (glibc's
    thread-based POSIX AIO, the closest fio has to a thread pool),
    linux-aio -> libaio, io_uring -> io_uring;
  - sequential reads and writes at depth 16 against `qemu-img bench`
    (-t none, -i threads|native|io_uring), which only does sequential I/O;
  - the null path: qaio-bench --engine null against qemu-img bench on
    null-co, at depth 32.

IOPS come from each tool's own report; CPU time per request is measured
the same way for all three (user + system time of the child process, as
the kernel accounts it when it is reaped, divided by its requests), so process start-up is included for
every tool alike.

Usage: bench-block.py --qaio-bench PATH [--dir DIR] [--runs N] [--time S]
                      [--size MIB] [--quick] [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

FIO_ENGINE = {"threads": "posixaio", "linux-aio": "libaio",
              "io_uring": "io_uring"}
QEMU_AIO = {"threads": "threads", "linux-aio": "native",
            "io_uring": "io_uring"}


def run(cmd):
    """Run @cmd to completion; return its stdout or raise."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd[0], p.returncode,
                                                p.stderr.strip()[:300]))
    return p.stdout


def run_timed(cmd):
    """Run @cmd, returning (stdout, user+sys CPU seconds of the child)."""
    before = os.times()
    out = run(cmd)
    after = os.times()
    cpu = (after.children_user - before.children_user +
           after.children_system - before.children_system)
    return out, cpu


def qaio(args, o, engine, rw, depth, count=None):
    cmd = [args.qaio_bench, "--engine", engine, "--rw", rw, "--bs", "4k",
           "--depth", str(depth), "--json"]
    if engine != "null":
        cmd += ["--direct", args.file]
    cmd += ["--count", str(count)] if count else ["--time", str(o.time)]
    out, cpu = run_timed(cmd)
    r = json.loads(out)["runs"][0]
    if r["status"] != "ok":
        raise RuntimeError("qaio-bench %s: %s" % (engine, r.get("reason")))
    return {"iops": r["iops"], "requests": r["requests"],
            "cpu_us": cpu * 1e6 / max(r["requests"], 1)}


def fio(args, o, engine, rw, depth):
    cmd = ["fio", "--name=qaio-peer", "--filename=" + args.file,
           "--ioengine=" + FIO_ENGINE[engine], "--direct=1", "--rw=" + rw,
           "--bs=4k", "--iodepth=%d" % depth, "--time_based",
           "--runtime=%g" % o.time, "--size=%dM" % o.size,
           "--norandommap", "--randrepeat=0", "--output-format=json"]
    out, cpu = run_timed(cmd)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["write" if "write" in rw else "read"]
    return {"iops": side["iops"], "requests": side["total_ios"],
            "cpu_us": cpu * 1e6 / max(side["total_ios"], 1)}


def qemu_img(args, o, engine, rw, depth, count):
    if engine == "null":
        cmd = ["qemu-img", "bench", "--image-opts", "-c", str(count),
               "-d", str(depth), "driver=null-co,size=1G"]
    else:
        cmd = ["qemu-img", "bench", "-f", "raw", "-t", "none",
               "-i", QEMU_AIO[engine], "-d", str(depth), "-c", str(count),
               "-s", "4k"] + (["-w"] if "write" in rw else []) + [args.file]
    out, cpu = run_timed(cmd)
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    if not m:
        raise RuntimeError("qemu-img bench: unexpected output: " + out)
    secs = max(float(m.group(1)), 1e-9)
    return {"iops": count / secs, "requests": count,
            "cpu_us": cpu * 1e6 / count}


def scenarios(o):
    """(name, engine, rw, depth, peer) for every row of the table."""
    rows = []
    depths = [16] if o.quick else [1, 16, 64]
    rws = ["randread"] if o.quick else ["randread", "randwrite"]
    for engine in ["threads", "linux-aio", "io_uring"]:
        for rw in rws:
            for d in depths:
                rows.append(("%s %s qd%d" % (engine, rw, d), engine, rw, d,
                             "fio"))
    for engine in ["threads", "linux-aio", "io_uring"]:
        for rw in (["read"] if o.quick else ["read", "write"]):
            rows.append(("%s %s qd16" % (engine, rw), engine, rw, 16,
                         "qemu-img"))
    rows.append(("null qd32", "null", "read", 32, "qemu-img"))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qaio-bench", required=True)
    ap.add_argument("--dir", default=".",
                    help="where the test file goes (must allow O_DIRECT)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--time", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=1024, help="file size, MiB")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    o = ap.parse_args()
    for tool in ["fio", "qemu-img"]:
        if not shutil.which(tool):
            sys.exit("bench-block: %s is missing (make bench-peers "
                     "installs it)" % tool)

    fd, path = tempfile.mkstemp(prefix="qaio-block.", dir=o.dir)
    o.file = path
    try:
        with os.fdopen(fd, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(o.size):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        rows = scenarios(o)
        samples = {r[0]: {"qaio": [], "peer": []} for r in rows}
        for i in range(o.runs):
            for name, engine, rw, d, peer in rows:
                print("\r\033[K[run %d/%d] %s" % (i + 1, o.runs, name),
                      end="", file=sys.stderr, flush=True)
                # Alternate which of the pair runs first, so that a disk
                # or a neighbour warming up or slowing down in between
                # does not always favour the same side.
                peer_first = i % 2 == 1
                if peer == "fio":
                    if peer_first:
                        p = fio(o, o, engine, rw, d)
                    q = qaio(o, o, engine, rw, d)
                    if not peer_first:
                        p = fio(o, o, engine, rw, d)
                else:
                    q = qaio(o, o, engine, rw, d)
                    count = max(1000, min(int(q["iops"] * o.time), 2000000))
                    if peer_first:
                        p = qemu_img(o, o, engine, rw, d, count)
                    q = qaio(o, o, engine, rw, d, count=count)
                    if not peer_first:
                        p = qemu_img(o, o, engine, rw, d, count)
                samples[name]["qaio"].append(q)
                samples[name]["peer"].append(p)
        print("\r\033[K", end="", file=sys.stderr)
    finally:
        os.unlink(path)

    med = lambda xs, k: statistics.median(x[k] for x in xs)
    print("block I/O: qaio-bench vs fio / qemu-img bench, O_DIRECT 4 KiB, "
          "%d runs, medians (min..max), paired ratios" % o.runs)
    print("%-28s %-9s %16s %16s %7s %8s %8s %7s" % (
        "workload", "peer", "qaio IOPS", "peer IOPS", "ratio",
        "qaio CPU", "peer CPU", "ratio"))
    results = []
    for name, engine, rw, d, peer in scenarios(o):
        s = samples[name]
        qi, pi = med(s["qaio"], "iops"), med(s["peer"], "iops")
        qc, pc = med(s["qaio"], "cpu_us"), med(s["peer"], "cpu_us")
        # The disk's speed drifts by several times over minutes here, so
        # the ratio is taken within each back-to-back pair, then the
        # median of those: a slow minute hurts both sides of its pair.
        ratios = sorted(q["iops"] / p["iops"]
                        for q, p in zip(s["qaio"], s["peer"]))
        cratios = sorted(q["cpu_us"] / p["cpu_us"]
                         for q, p in zip(s["qaio"], s["peer"]))
        ri, rc = statistics.median(ratios), statistics.median(cratios)
        span = lambda xs: "%.0f..%.0f" % (min(x["iops"] for x in xs),
                                           max(x["iops"] for x in xs))
        print("%-28s %-9s %8.0f %-7s %8.0f %-7s %7.2f %6.1fus %6.1fus %7.2f"
              % (name, peer, qi, "", pi, "", ri, qc, pc, rc))
        print("%-28s %-9s %16s %16s %7s %24s" % (
            "", "", span(s["qaio"]), span(s["peer"]),
            "%.2f..%.2f" % (ratios[0], ratios[-1]),
            "%.2f..%.2f" % (cratios[0], cratios[-1])))
        results.append({"workload": name, "engine": engine, "rw": rw,
                        "depth": d, "peer": peer, "qaio": s["qaio"],
                        "peer_samples": s["peer"],
                        "median": {"qaio_iops": qi, "peer_iops": pi,
                                   "qaio_cpu_us": qc, "peer_cpu_us": pc,
                                   "paired_iops_ratio": ri,
                                   "paired_cpu_ratio": rc}})
    print("ratio: median over runs of qaio / peer measured back to back (order "
          "alternating), min..max below it;\nCPU: user + system time of the "
          "whole process per request; ratio above 1 means qaio is faster "
          "(IOPS) or costlier (CPU)")
    if o.json:
        with open(o.json, "w") as f:
            json.dump({"runs": o.runs, "time_s": o.time, "size_mib": o.size,
                       "uname": " ".join(os.uname()), "results": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
