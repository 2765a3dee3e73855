"""Synth benchmark: how close is `python main.py` to the cheapest possible cdktf synth?

    make bench                      # or: .venv/bin/python scripts/bench.py [--runs 5]

Every variant runs as a whole process, the way users run it, on this machine in one go:

  floor   scripts/floor_app.py: one stack with only the AWS provider block, provider
          loaded module by module through components/aws.py, in Python and in node.
          Nothing we do can be cheaper.
  ours    python main.py, all environments
  ours-1  python main.py --env dev: ours minus ours-1 over the extra environments is
          the marginal cost of one more environment
  naive   the same synth with DYNAMO_ECS_PLAIN_IMPORT=1: no speed-ups, the plain
          `import cdktf_cdktf_provider_aws`, which loads all ~2,100 generated modules,
          in Python and in node
  floor-eager
          the floor with node requiring the whole provider index (jsii's default), as
          it was before components/lazy_provider_index.cjs: for reference only, no
          target is measured against it

Times are wall-clock seconds of the whole process (what a user waits for); the table also
shows the median CPU time (user + sys) of the process tree, which shifts less than wall
time when something else loads the machine, but the targets are on wall time.

Each variant runs once to warm the OS page cache, __pycache__ and jsii's package cache,
then --runs times, round-robin (floor, ours, ours-1, naive, floor-eager, floor, ...) so that a burst
of load from something else on the machine hits all variants alike; we report medians.

Peak RSS: while a variant runs we poll its process tree (/proc/PID/task/*/children,
recursively) every 20 ms and keep the last VmHWM (the kernel's own per-process peak
RSS) seen for each process. A process's peak is the sum over the Python process and the
node process jsii starts (they peak at different moments, so the sum is an upper bound).
ru_maxrss from wait4/RUSAGE_CHILDREN would not do: it is the maximum of a single
process, node's or Python's, never the tree. We report the median over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENTS = sorted(path.stem for path in (PROJECT_DIR / "environments").glob("*.toml"))

TARGET_OURS_OVER_FLOOR = 1.3
TARGET_NAIVE_OVER_OURS = 3.5
TARGET_EXTRA_ENV_S = 0.3
TARGET_RSS_OURS_OVER_FLOOR = 1.2


@dataclass
class Variant:
    name: str
    script: str
    args: list[str]
    environment: dict[str, str] = field(default_factory=dict)  # variables set on top of bench.py's own
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    rss_kb: list[dict[str, int]] = field(default_factory=list)

    def command(self, outdir: Path) -> list[str]:
        return [
            sys.executable,
            str(PROJECT_DIR / self.script),
            *[str(outdir) if a == "{out}" else a for a in self.args],
        ]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_rss_mb(self) -> float:
        return statistics.median(sum(run.values()) for run in self.rss_kb) / 1024

    def median_rss_of(self, process: str) -> float:
        return statistics.median(run.get(process, 0) for run in self.rss_kb) / 1024


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
        except OSError:  # exited meanwhile
            continue
    return found


def peak_rss_kb(pid: int) -> tuple[str, int] | None:
    """(process name, VmHWM in kB) of a live process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return fields["Name"].strip(), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError):  # exited, or a zombie (no VmHWM)
        return None


def run_once(variant: Variant, scratch: Path) -> None:
    outdir = Path(tempfile.mkdtemp(dir=scratch)) / "cdktf.out"
    peaks: dict[int, tuple[str, int]] = {}
    start = time.perf_counter()
    child = subprocess.Popen(
        variant.command(outdir),
        cwd=PROJECT_DIR,
        env={**os.environ, **variant.environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    while True:
        # wait4 rather than Popen.poll: its rusage is the CPU time of the whole tree (each
        # process's usage includes the children it waited for: python -> node -> node).
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        for pid in descendants(child.pid):
            seen = peak_rss_kb(pid)
            if seen:
                peaks[pid] = seen
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"bench: {variant.name} failed with exit code {child.returncode}:\n{child.stderr.read().decode()}")
    child.stderr.close()
    variant.seconds.append(elapsed)
    variant.cpu_seconds.append(usage.ru_utime + usage.ru_stime)
    by_name: dict[str, int] = {}
    for name, kb in peaks.values():
        by_name[name] = by_name.get(name, 0) + kb
    variant.rss_kb.append(by_name)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant (default 5)")
    parser.add_argument("--no-naive", action="store_true", help="skip the slow plain-import variant")
    args = parser.parse_args()

    variants = [
        Variant("floor", "scripts/floor_app.py", ["{out}"]),
        Variant("ours", "main.py", ["--outdir", "{out}"]),
        Variant("ours-1", "main.py", ["--env", ENVIRONMENTS[0], "--outdir", "{out}"]),
    ]
    if not args.no_naive:
        variants.append(
            Variant("naive", "main.py", ["--outdir", "{out}"], environment={"DYNAMO_ECS_PLAIN_IMPORT": "1"})
        )
    variants.append(Variant("floor-eager", "scripts/floor_app.py", ["--node-loads-everything", "{out}"]))
    by_name = {variant.name: variant for variant in variants}

    print(
        f"bench: {len(ENVIRONMENTS)} environments ({', '.join(ENVIRONMENTS)}), {args.runs} runs per variant after one "
        f"warm-up, {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="dynamo-bench.") as scratch:
        for variant in variants:
            run_once(variant, Path(scratch))
            variant.seconds.clear()
            variant.cpu_seconds.clear()
            variant.rss_kb.clear()
        for round_ in range(args.runs):
            for variant in variants:
                run_once(variant, Path(scratch))
            print(f"  run {round_ + 1}: " + "  ".join(f"{v.name} {v.seconds[-1]:.2f}s" for v in variants), flush=True)

    floor, ours, ours1 = by_name["floor"], by_name["ours"], by_name["ours-1"]
    print()
    print(f"{'variant':<11} {'median':>8} {'min':>7} {'max':>7}  {'CPU':>7}   peak RSS (python + node)")
    for v in variants:
        print(
            f"{v.name:<11} {v.median_s:>7.2f}s {min(v.seconds):>6.2f}s {max(v.seconds):>6.2f}s "
            f"{statistics.median(v.cpu_seconds):>6.2f}s"
            f"   {v.median_rss_mb:>4.0f} MB = {v.median_rss_of('python'):.0f} + {v.median_rss_of('node'):.0f}"
        )
    ours_over_floor = ours.median_s / floor.median_s
    extra = (ours.median_s - ours1.median_s) / (len(ENVIRONMENTS) - 1)
    rss_ratio = ours.median_rss_mb / floor.median_rss_mb
    print()
    print(
        f"ours/floor          {ours_over_floor:.2f}   (target <= {TARGET_OURS_OVER_FLOOR})  "
        f"{verdict(ours_over_floor <= TARGET_OURS_OVER_FLOOR)}"
    )
    summary = [f"ours/floor {ours_over_floor:.2f} {verdict(ours_over_floor <= TARGET_OURS_OVER_FLOOR)}"]
    if "naive" in by_name:
        naive_over_ours = by_name["naive"].median_s / ours.median_s
        print(
            f"naive/ours          {naive_over_ours:.2f}   (target >= {TARGET_NAIVE_OVER_OURS})  "
            f"{verdict(naive_over_ours >= TARGET_NAIVE_OVER_OURS)}"
        )
        summary.append(f"naive/ours {naive_over_ours:.2f} {verdict(naive_over_ours >= TARGET_NAIVE_OVER_OURS)}")
    print(
        f"extra environment   {extra:.2f}s  (target <= {TARGET_EXTRA_ENV_S}s)  {verdict(extra <= TARGET_EXTRA_ENV_S)}"
    )
    summary.append(f"extra env {extra:.2f}s {verdict(extra <= TARGET_EXTRA_ENV_S)}")
    print(
        f"peak RSS ours/floor {rss_ratio:.2f}   ({ours.median_rss_mb:.0f} MB / {floor.median_rss_mb:.0f} MB, target "
        f"<= {TARGET_RSS_OURS_OVER_FLOOR})  {verdict(rss_ratio <= TARGET_RSS_OURS_OVER_FLOOR)}"
    )
    summary.append(f"RSS ours/floor {rss_ratio:.2f} {verdict(rss_ratio <= TARGET_RSS_OURS_OVER_FLOOR)}")
    # Noise from other work on the machine only ever adds time, so the fastest run of each
    # variant is the least disturbed one: if these differ much from the medians, re-run.
    fastest = f"ours/floor {min(ours.seconds) / min(floor.seconds):.2f}"
    if "naive" in by_name:
        fastest += f", naive/ours {min(by_name['naive'].seconds) / min(ours.seconds):.2f}"
    fastest += f", extra env {(min(ours.seconds) - min(ours1.seconds)) / (len(ENVIRONMENTS) - 1):.2f}s"
    print(f"fastest runs only   {fastest}")
    eager = by_name["floor-eager"]
    print(
        f"for reference       ours/floor-eager {ours.median_s / eager.median_s:.2f}, RSS "
        f"{ours.median_rss_mb / eager.median_rss_mb:.2f}"
        f" (floor-eager {eager.median_s:.2f}s, {eager.median_rss_mb:.0f} MB: node requiring the whole provider index)"
    )
    print(f"summary: ours {ours.median_s:.2f}s floor {floor.median_s:.2f}s | " + " | ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
