#!/usr/bin/env python3
"""Run the test binaries cargo built, a few at a time (tests/run.sh).

`cargo test` runs its test binaries one after another, and most of this
suite's time is tests waiting on timers inside network namespaces, with the
CPU idle. This runs them in parallel lanes, longest first, each binary's
output kept together and printed when it ends, and exits non-zero if any
failed (every binary runs; none stops the others).

Usage: run_binaries.py ARTIFACTS_JSON [--lanes N] [-- ARGS for each binary]
where ARTIFACTS_JSON is the output of
`cargo test --no-run --message-format=json-render-diagnostics`.
Binaries run from the current directory (the package root, as cargo runs
them); their own names and exit codes are summarised at the end.
"""

import glob
import json
import os
import subprocess
import sys
import threading
import time

# The slowest binaries of earlier runs start first, so that no long one is
# left alone at the end.
SLOW_FIRST = [
    "evidence_netns", "rollup", "alerts_delivery", "failover_netns", "agent_netns",
    "linkwatch(lib)", "upload", "hostile", "replicas", "report_netns", "testbed_selftest",
    "read_api", "networkmanager_netns", "collector_api", "alerts_netns", "operator",
    "presets_netns",
]


# Binaries run a second time with the clock at 00:10 in Asia/Dhaka (18:10
# UTC), through libfaketime (the `faketime` package): their pages show "today"
# and "the last 24 hours" in Dhaka, and a fixture written in the last 30
# minutes straddles Dhaka's midnight there. A CI run between 18:00 and 18:30
# UTC once failed on this. Monotonic time is left alone (tokio's timers).
AT_DHAKA_MIDNIGHT = ["dashboard_pages", "dashboard_reports", "dashboard_browser"]


def at_dhaka_midnight(found):
    lib = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not lib:
        print("run_binaries.py: no libfaketime: the runs at Dhaka's midnight skip",
              file=sys.stderr)
        return []
    now = time.time()
    target = (now // 86400) * 86400 + 18 * 3600 + 600
    env = dict(os.environ, LD_PRELOAD=lib[0], FAKETIME=f"{int(target - now):+d}",
               FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
    return [(f"{name}@00:10-Dhaka", exe, env) for name, exe in found
            if name in AT_DHAKA_MIDNIGHT]


def artifacts(path):
    found = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
                continue
            if not msg.get("profile", {}).get("test"):
                continue
            target = msg["target"]
            kind = target["kind"][0]
            if kind == "bench":
                continue  # built so that they are linted; run with `cargo bench`
            name = target["name"] if kind == "test" else f"{target['name']}({kind})"
            found.append((name, msg["executable"]))
    return found


def order(found):
    rank = {n: i for i, n in enumerate(SLOW_FIRST)}
    runs = [(name, exe, None) for name, exe in found] + at_dhaka_midnight(found)
    return sorted(runs, key=lambda r: (rank.get(r[0], len(SLOW_FIRST)), r[0]))


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    lanes = 2
    if "--lanes" in argv:
        i = argv.index("--lanes")
        lanes = int(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) != 1:
        sys.exit(__doc__)
    queue = order(artifacts(argv[0]))
    if not queue:
        sys.exit(f"run_binaries.py: no test binaries in {argv[0]}")
    lock = threading.Lock()
    results = []

    def lane():
        while True:
            with lock:
                if not queue:
                    return
                name, exe, env = queue.pop(0)
            start = time.monotonic()
            p = subprocess.run([exe, *extra], stdout=subprocess.PIPE, env=env,
                               stderr=subprocess.STDOUT, check=False)
            took = time.monotonic() - start
            with lock:
                out = sys.stdout
                out.write(f"\n==== {name} ({exe}): exit {p.returncode}, {took:.1f} s\n")
                out.write(p.stdout.decode("utf-8", "replace"))
                out.flush()
                results.append((name, p.returncode, took))

    threads = [threading.Thread(target=lane) for _ in range(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in results if r[1] != 0]
    print("\n==== test binaries, slowest first")
    for name, code, took in sorted(results, key=lambda r: -r[2]):
        print(f"{took:8.1f} s  {'FAILED' if code else 'ok    '}  {name}")
    if failed:
        print(f"\n{len(failed)} test binaries FAILED: {', '.join(r[0] for r in failed)}")
        sys.exit(1)
    print(f"\nall {len(results)} test binaries passed")


if __name__ == "__main__":
    main()
