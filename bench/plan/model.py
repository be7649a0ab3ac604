#!/usr/bin/env python3
"""bench/plan/model.py: what `plan run` would do with 50 images on 10 engines, from measured per-image times.

Reads bench/plan/measured.json (written by bench/plan/run.sh): the per-image times of the 12-image plan built alone
(--jobs 1) and with 3 builds at once (--jobs 3). Builds a platform team's tree of 50 images: a base, 4 runtimes on it,
40 services on the runtimes (one in eight also copies from a second runtime: a diamond), and 5 edge images on the
first services. Each image gets the measured time of its kind (base, runtime, service, edge), scaled by a
deterministic spread of +-30% so that no two are alike. Then it runs the same list scheduling as PlanScheduler (a
ready image goes to the least-loaded engine, longest chain first) on 10 engines, where every image that runs on
another engine than one of its parents pays a hand-off: the measured extra time an image took in the --jobs 3 run
over its time alone (transfers and contention), taken as the mean over the services.

Prints the serial time, the critical path (the floor), the simulated wall time and their ratio. The simulation has no
core limit: it is what 10 engines on 10 machines would do; on this 2-core machine the real run is core-bound.
Usage: bench/plan/model.py [measured.json] [IMAGES] [ENGINES]
"""
import heapq
import json
import sys


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/plan/measured.json"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    engines = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    measured = json.load(open(path))
    alone, busy = measured["times"], measured["times_jobs3"]
    kind_time = {
        "base": alone["base"],
        "runtime": (alone["rt-a"] + alone["rt-b"]) / 2,
        "service": sum(alone[f"svc-{i}"] for i in range(1, 9)) / 8,
        "edge": alone["edge"],
    }
    handoff = max(0.0, sum(busy[f"svc-{i}"] - alone[f"svc-{i}"] for i in range(1, 9)) / 8)

    # The tree.
    parents, kind = {"base": []}, {"base": "base"}
    runtimes = [f"rt-{i}" for i in range(1, 5)]
    for r in runtimes:
        parents[r], kind[r] = ["base"], "runtime"
    services = count - 1 - len(runtimes) - 5
    for i in range(1, services + 1):
        first = runtimes[i % len(runtimes)]
        parents[f"svc-{i}"] = [first] + ([runtimes[(i + 1) % len(runtimes)]] if i % 8 == 0 else [])
        kind[f"svc-{i}"] = "service"
    for i in range(1, 6):
        parents[f"edge-{i}"], kind[f"edge-{i}"] = [f"svc-{i}"], "edge"
    names = list(parents)
    # A deterministic +-30% spread.
    time = {n: kind_time[kind[n]] * (0.7 + 0.6 * ((hash_of(n) % 1000) / 999)) for n in names}

    children = {n: [] for n in names}
    for n, ps in parents.items():
        for p in ps:
            children[p].append(n)
    height = {}

    def h(n):
        if n not in height:
            height[n] = time[n] + max((h(c) for c in children[n]), default=0.0)
        return height[n]

    finish_alone = {}

    def f(n):
        if n not in finish_alone:
            finish_alone[n] = time[n] + max((f(p) for p in parents[n]), default=0.0)
        return finish_alone[n]

    critical = max(f(n) for n in names)
    serial = sum(time.values())

    # List scheduling: events (time, engine, image).
    missing = {n: len(parents[n]) for n in names}
    ready = [n for n in names if missing[n] == 0]
    load = [0] * engines
    where, done_at = {}, {}
    running = []
    clock = 0.0
    while ready or running:
        ready.sort(key=lambda n: (-h(n), names.index(n)))
        while ready and min(load) == 0:
            n = ready.pop(0)
            free = [e for e in range(engines) if load[e] == 0]
            # Affinity: an engine that holds a parent, else the first free one.
            engine = next((e for e in free if any(where.get(p) == e for p in parents[n])), free[0])
            cost = time[n] + (handoff if parents[n] and not all(where.get(p) == engine for p in parents[n]) else 0.0)
            load[engine] = 1
            where[n] = engine
            heapq.heappush(running, (clock + cost, engine, n))
        clock, engine, n = heapq.heappop(running)
        load[engine] = 0
        done_at[n] = clock
        for c in children[n]:
            missing[c] -= 1
            if missing[c] == 0:
                ready.append(c)
    wall = max(done_at.values())
    print(f"{count} images on {engines} engines (times from {path}; hand-off {handoff:.2f}s per image that changes engine)")
    print(f"  serial (one engine): {serial:.1f}s")
    print(f"  critical path (floor): {critical:.1f}s")
    print(f"  simulated wall time: {wall:.1f}s = {wall / critical:.2f}x the critical path, {serial / wall:.1f}x faster than serial")


def hash_of(text):
    value = 2166136261
    for ch in text.encode():
        value = ((value ^ ch) * 16777619) % (1 << 32)
    return value


if __name__ == "__main__":
    main()
