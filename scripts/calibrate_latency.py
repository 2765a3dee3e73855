"""Measure the real Dynamo frontend and mocker workers at stepped concurrency, on loopback.

Starts Debian's etcd and nats-server, the pinned ai-dynamo's `dynamo.frontend` (KV router) and
one prefill and one decode `dynamo.mocker` worker (disaggregated, as the twin runs them), all on
127.0.0.1 and nowhere else. For each concurrency step it keeps that many streamed chat
completions in flight for a fixed time, then reads the frontend's `/metrics` histograms
`dynamo_frontend_time_to_first_token_seconds` and `dynamo_frontend_inter_token_latency_seconds`
before and after the step: mean TTFT and mean ITL of the step are delta(sum) / delta(count);
the 90th percentiles are estimated from the buckets' deltas, as Prometheus does.

Writes simulator/data/calibration.json. Run: make calibrate (needs make twin-deps).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.twin.install import dynamo_python  # noqa: E402

HOST = "127.0.0.1"
ETCD_PORT, ETCD_PEER_PORT, NATS_PORT, FRONTEND_PORT = 23790, 23800, 42220, 18000
PREFILL_SYSTEM_PORT, DECODE_SYSTEM_PORT = 18081, 18082
MODEL = "calibration/tiny-model"
CONCURRENCY_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
# One token per character with the twin's tokenizer (tests/twin/hf_model.py): a 1000-token prompt.
PROMPT_CHARS = 1000
OUTPUT_TOKENS = 100
TTFT_METRIC = "dynamo_frontend_time_to_first_token_seconds"
ITL_METRIC = "dynamo_frontend_inter_token_latency_seconds"
OUTPUT = PROJECT / "simulator" / "data" / "calibration.json"


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def http_get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def start_etcd_and_nats(workdir: Path, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """Debian's etcd (one member) and nats-server with JetStream on 127.0.0.1; returns once etcd is healthy."""
    etcd, peer = f"http://{HOST}:{ETCD_PORT}", f"http://{HOST}:{ETCD_PEER_PORT}"
    processes = [
        start(
            [
                "etcd",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd}",
                f"--advertise-client-urls={etcd}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
            ],
            env,
            workdir / "etcd.log",
        ),
        start(
            ["nats-server", "-js", "-a", HOST, "-p", str(NATS_PORT), "-sd", str(workdir / "nats")],
            env,
            workdir / "nats.log",
        ),
    ]
    wait_for("etcd", lambda: http_get(ETCD_PORT, "/health")[0] == 200)
    return processes


def histogram_totals(metrics: str, name: str) -> tuple[float, float]:
    """(sum, count) of a histogram, added over its label sets."""
    total = {"sum": 0.0, "count": 0.0}
    for kind in total:
        for match in re.finditer(rf"^{name}_{kind}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", metrics, re.MULTILINE):
            total[kind] += float(match.group(1))
    return total["sum"], total["count"]


def histogram_buckets(metrics: str, name: str) -> dict[float, float]:
    """Cumulative count per upper bound (le), added over label sets."""
    buckets: dict[float, float] = {}
    for match in re.finditer(rf'^{name}_bucket\{{[^}}]*le="([^"]+)"[^}}]*\}} ([0-9.eE+-]+)$', metrics, re.MULTILINE):
        bound = float(match.group(1))  # float("+Inf") is inf
        buckets[bound] = buckets.get(bound, 0.0) + float(match.group(2))
    return buckets


def quantile(quantile: float, before: dict[float, float], after: dict[float, float]) -> float | None:
    """The quantile of the observations between two scrapes, as Prometheus's histogram_quantile
    estimates it: linear within the bucket it falls in. Only as fine as the buckets."""
    bounds = sorted(after)
    counts = [after[bound] - before.get(bound, 0.0) for bound in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = quantile * counts[-1]
    for index, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count >= rank:
            lower, below = (bounds[index - 1], counts[index - 1]) if index else (0.0, 0.0)
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else bound
    return None


def streamed_completion(prompt: str) -> int:
    """Streams one chat completion to its end; returns the number of chunks received."""
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": OUTPUT_TOKENS,
            "min_tokens": OUTPUT_TOKENS,
            "ignore_eos": True,
            "stream": True,
        }
    )
    connection = http.client.HTTPConnection(HOST, FRONTEND_PORT, timeout=300)
    try:
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
        return sum(1 for line in response if line.startswith(b"data: {"))
    finally:
        connection.close()


def completes(prompt: str) -> bool:
    try:
        streamed_completion(prompt)
    except RuntimeError:
        return False
    return True


def run_step(concurrency: int, seconds: float, step_index: int) -> dict[str, float]:
    stop_at = time.monotonic() + seconds
    completed = [0] * concurrency
    errors: list[str] = []

    def client(index: int) -> None:
        request = 0
        while time.monotonic() < stop_at:
            # A different prompt per request, so the KV router's prefix cache hits nothing.
            prefix = f"{step_index}-{index}-{request}-"
            prompt = (prefix + "abcdefghij" * (PROMPT_CHARS // 10))[:PROMPT_CHARS]
            try:
                streamed_completion(prompt)
                completed[index] += 1
            except (OSError, RuntimeError) as error:
                errors.append(str(error))
                return
            request += 1

    before = http_get(FRONTEND_PORT, "/metrics")[1]
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    after = http_get(FRONTEND_PORT, "/metrics")[1]
    if errors:
        raise RuntimeError(f"concurrency {concurrency}: {errors[0]}")
    ttft_sum = histogram_totals(after, TTFT_METRIC)[0] - histogram_totals(before, TTFT_METRIC)[0]
    ttft_count = histogram_totals(after, TTFT_METRIC)[1] - histogram_totals(before, TTFT_METRIC)[1]
    itl_sum = histogram_totals(after, ITL_METRIC)[0] - histogram_totals(before, ITL_METRIC)[0]
    itl_count = histogram_totals(after, ITL_METRIC)[1] - histogram_totals(before, ITL_METRIC)[1]
    ttft_p90 = quantile(0.9, histogram_buckets(before, TTFT_METRIC), histogram_buckets(after, TTFT_METRIC))
    itl_p90 = quantile(0.9, histogram_buckets(before, ITL_METRIC), histogram_buckets(after, ITL_METRIC))
    return {
        "concurrency": concurrency,
        "requests": sum(completed),
        "requests_per_second": round(sum(completed) / elapsed, 3),
        "ttft_mean_ms": round(1000 * ttft_sum / ttft_count, 2),
        "itl_mean_ms": round(1000 * itl_sum / itl_count, 3),
        # From the histogram's buckets, which are coarse (about x2.2 apart): an estimate.
        "ttft_p90_ms": None if ttft_p90 is None else round(1000 * ttft_p90, 1),
        "itl_p90_ms": None if itl_p90 is None else round(1000 * itl_p90, 2),
    }


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A working directory for one run: removed when the run succeeds, kept and named when it fails
    (the processes' logs in it say why)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    except BaseException:
        print(f"logs: {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir)


def dynamo_version(python: Path) -> str:
    """The ai-dynamo release installed for ``python``, for the measurement's record."""
    return subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('ai-dynamo'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def write_json(path: Path, document: dict[str, Any], *, sort_keys: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=sort_keys) + "\n")
    print(f"wrote {path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="time per concurrency step")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--steps", type=int, nargs="+", default=list(CONCURRENCY_STEPS), help="streams in flight, one step each"
    )
    args = parser.parse_args()
    python = dynamo_python()
    with scratch("dynamo-calibrate-") as workdir:
        subprocess.run([str(python), "-m", "tests.twin.hf_model", str(workdir / "hf"), MODEL], check=True, cwd=PROJECT)
        snapshot = next((workdir / "hf" / "hub").glob("models--*/snapshots/*"))
        env = {
            "PATH": f"{python.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(workdir),
            # Dynamo writes a logging configuration into the temporary directory per process: ours, removed with it.
            "TMPDIR": str(workdir),
            "HF_HOME": str(workdir / "hf"),
            "HF_HUB_OFFLINE": "1",
            "ETCD_ENDPOINTS": f"http://{HOST}:{ETCD_PORT}",
            "NATS_SERVER": f"nats://{HOST}:{NATS_PORT}",
            "DYN_EVENT_PLANE": "nats",
            "DYN_LOG": "warn",
        }
        processes: list[subprocess.Popen[bytes]] = []
        try:
            processes += start_etcd_and_nats(workdir, env)
            processes.append(
                start(
                    [
                        str(python),
                        "-m",
                        "dynamo.frontend",
                        "--http-host",
                        HOST,
                        "--http-port",
                        str(FRONTEND_PORT),
                        "--router-mode",
                        "kv",
                    ],
                    env,
                    workdir / "frontend.log",
                )
            )
            for role, system_port in (("prefill", PREFILL_SYSTEM_PORT), ("decode", DECODE_SYSTEM_PORT)):
                # As components/workers.py sets it: without it the mocker's /health stays 503 (measured there).
                worker_env = env | {
                    "DYN_SYSTEM_PORT": str(system_port),
                    "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": '["generate"]',
                }
                argv = [str(python), "-m", "dynamo.mocker", "--model-path", str(snapshot), "--model-name", MODEL]
                processes.append(start(argv + ["--disaggregation-mode", role], worker_env, workdir / f"{role}.log"))
            wait_for("decode worker", lambda: http_get(DECODE_SYSTEM_PORT, "/health")[0] == 200)
            wait_for("prefill worker", lambda: http_get(PREFILL_SYSTEM_PORT, "/health")[0] == 200)
            wait_for("model at the frontend", lambda: MODEL in http_get(FRONTEND_PORT, "/v1/models")[1])
            # /v1/models lists the model before the router has attached the workers; until then a
            # completion gets HTTP 404.
            wait_for("a completion through the frontend", lambda: completes("warm-up"), timeout=60)
            steps = []
            for index, concurrency in enumerate(args.steps):
                step = run_step(concurrency, args.seconds, index)
                print(json.dumps(step), flush=True)
                steps.append(step)
            version = dynamo_version(python)
            document = {
                "source": "scripts/calibrate_latency.py",
                "ai_dynamo": version,
                "workers": {"prefill": 1, "decode": 1, "engine": "dynamo.mocker (defaults)"},
                "prompt_tokens": PROMPT_CHARS,
                "output_tokens": OUTPUT_TOKENS,
                "seconds_per_step": args.seconds,
                "cpus": os.cpu_count(),
                "steps": steps,
            }
            write_json(args.output, document)
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
