"""Measure what a decode worker's in-flight streams go through when the worker gets SIGTERM or SIGKILL.

For each trial it starts a fresh stack on 127.0.0.1 and nowhere else, with the processes and ports
of scripts/calibrate_latency.py: Debian's etcd and nats-server, the pinned ai-dynamo's
`dynamo.frontend` (KV router, `--migration-limit 3`), one prefill and two decode `dynamo.mocker`
workers (decode slowed by `--decode-speedup-ratio`, so a stream lasts tens of seconds). Every
Dynamo process gets DYN_TCP_RPC_HOST=127.0.0.1 and DYN_TCP_RESPONSE_STREAM_HOST=lo, so the TCP
request plane listens on 127.0.0.1 and the frontend's response streams on lo (its first address,
::1) rather than on the host's own address (measured with ss in this setup). It starts
a number of long streamed chat completions one at a time, attributes each to the decode worker
whose `dynamo_component_inflight_requests` rose, then sends the signal to the python process of
the decode worker holding more streams (the victim; as ECS signals a container's PID 1). From 1 s
after the signal it sends a short probe request every 2 s. Per stream it records whether it
completed (all tokens, a finish_reason, no in-band error), was cut (an in-band error or missing
tokens), or was rescued (completed on a victim stream with tokens arriving after the victim had
exited: the frontend migrated it); per probe the HTTP status and the time to first token; and
when and with what code the victim exited, also counted from the last chunk it served itself.

Writes docs/measurements/drain.json (sections of signals not measured in this run are kept from
the existing file if it is for the same ai-dynamo) and prints a summary table. The processes' logs
stay in a temporary directory, printed, if the run fails. Run: make measure-drain (needs make
twin-deps); a 2000-token trial takes about a minute.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "scripts"))

import calibrate_latency as calibration  # noqa: E402

from tests.twin.install import dynamo_python  # noqa: E402

HOST = calibration.HOST
MODEL = calibration.MODEL
PREFILL_SYSTEM_PORT, DECODE_SYSTEM_PORTS = calibration.PREFILL_SYSTEM_PORT, (18082, 18083)
PORTS = (
    calibration.ETCD_PORT,
    calibration.ETCD_PEER_PORT,
    calibration.NATS_PORT,
    calibration.FRONTEND_PORT,
    PREFILL_SYSTEM_PORT,
    *DECODE_SYSTEM_PORTS,
)
MIGRATION_LIMIT = 3
STREAMS = 8
PROMPT_CHARS = 1000  # one token per character with the twin's tokenizer
DECODE_SPEEDUP_RATIO = 0.4  # < 1 slows the mocker's decode: about 15.7 ms a token instead of about 6
SIGNAL_AFTER = 6.0  # seconds after the last stream started
PROBE_TOKENS = 20
PROBE_FIRST, PROBE_EVERY, PROBE_LAST = 1.0, 2.0, 31.0  # seconds after the signal
INFLIGHT_METRIC = "dynamo_component_inflight_requests"
# Frontend and victim log lines worth counting per trial (ANSI colours stripped first).
LOG_PATTERNS = {
    "frontend": {
        "stream_recreated": "Stream disconnected... recreating stream",
        "recreate_failed_instance_gone": "Cannot recreate stream",
        "retried_before_first_response": "Creating new stream... retrying",
    },
    "victim": {
        "no_handler_for_new_request": "No handler found for endpoint",
        "drain_completed": "All inflight TCP requests completed",
    },
}
OUTPUT = PROJECT / "docs" / "measurements" / "drain.json"


class Stream:
    """One streamed chat completion, read chunk by chunk in its own thread."""

    def __init__(self, name: str, tokens: int) -> None:
        self.name, self.tokens = name, tokens
        self.status: int | None = None
        self.error: str | None = None  # before or outside the SSE stream
        self.error_events: list[str] = []  # in-band `data: {"error": ...}` lines
        # Monotonic time of each chunk with a choice. The mocker's deltas carry no text: a chunk
        # per token, and one more (2000 tokens arrive as 2001 chunks).
        self.chunk_times: list[float] = []
        self.finish_reason: str | None = None
        self.usage_tokens: int | None = None
        self.started = self.ended = 0.0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        prompt = (f"{self.name}-" + "abcdefghij" * (PROMPT_CHARS // 10))[:PROMPT_CHARS]
        body = json.dumps(
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.tokens,
                "min_tokens": self.tokens,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        self.started = time.monotonic()
        connection = http.client.HTTPConnection(HOST, calibration.FRONTEND_PORT, timeout=300)
        try:
            connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            self.status = response.status
            if response.status != 200:
                self.error = f"HTTP {response.status}: {response.read()[:200]!r}"
                return
            for line in response:
                if not line.startswith(b"data: {"):
                    continue
                now = time.monotonic()
                try:
                    chunk = json.loads(line[6:])
                except ValueError:
                    self.error_events.append(line[:200].decode(errors="replace"))
                    continue
                if "error" in chunk:
                    self.error_events.append(str((chunk["error"] or {}).get("message", chunk["error"]))[:200])
                if chunk.get("usage"):
                    self.usage_tokens = chunk["usage"].get("completion_tokens")
                for choice in chunk.get("choices") or []:
                    self.chunk_times.append(now)
                    if choice.get("finish_reason"):
                        self.finish_reason = choice["finish_reason"]
        except (OSError, http.client.HTTPException) as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.ended = time.monotonic()
            connection.close()

    def complete(self) -> bool:
        return (
            self.status == 200
            and self.error is None
            and not self.error_events
            and self.finish_reason is not None
            and self.usage_tokens == self.tokens
        )


def metric_total(port: int, name: str) -> float:
    """A metric on a worker's system port, added over its label sets; 0 if absent or unreachable."""
    try:
        text = calibration.http_get(port, "/metrics")[1]
    except OSError:
        return 0.0
    return sum(
        float(match.group(1)) for match in re.finditer(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", text, re.MULTILINE)
    )


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every process group, SIGKILL to those still up after 15 s."""
    for process in reversed(list(processes.values())):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # also whatever the group leader left behind
        except ProcessLookupError:
            pass
        process.wait()


def start_stack(workdir: Path, python: Path, snapshot: Path, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    env = {
        "PATH": f"{python.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(workdir),
        # Dynamo writes a logging configuration into the temporary directory per process: ours, removed with it.
        "TMPDIR": str(workdir),
        "HF_HOME": str(snapshot.parents[3]),
        "HF_HUB_OFFLINE": "1",
        "ETCD_ENDPOINTS": f"http://{HOST}:{calibration.ETCD_PORT}",
        "NATS_SERVER": f"nats://{HOST}:{calibration.NATS_PORT}",
        "DYN_EVENT_PLANE": "nats",
        "DYN_LOG": "info",  # the drain's and the migration's messages are at info and warn
    }
    # Both TCP servers bind the host's first non-loopback address unless told otherwise: the
    # request plane (an address) and the frontend's response streams (an interface name).
    dynamo_env = env | {"DYN_TCP_RPC_HOST": HOST, "DYN_TCP_RESPONSE_STREAM_HOST": "lo"}
    processes["etcd"], processes["nats"] = calibration.start_etcd_and_nats(workdir, env)
    processes["frontend"] = calibration.start(
        [
            str(python),
            "-m",
            "dynamo.frontend",
            "--http-host",
            HOST,
            "--http-port",
            str(calibration.FRONTEND_PORT),
            "--router-mode",
            "kv",
            "--migration-limit",
            str(MIGRATION_LIMIT),
        ],
        dynamo_env,
        workdir / "frontend.log",
    )
    workers = [("prefill", "prefill", PREFILL_SYSTEM_PORT)] + [
        (f"decode{index}", "decode", port) for index, port in enumerate(DECODE_SYSTEM_PORTS)
    ]
    for name, role, port in workers:
        argv = [str(python), "-m", "dynamo.mocker", "--model-path", str(snapshot), "--model-name", MODEL]
        argv += ["--disaggregation-mode", role]
        if role == "decode":
            argv += ["--decode-speedup-ratio", str(DECODE_SPEEDUP_RATIO)]
        # As components/workers.py sets it: without it the mocker's /health stays 503.
        worker_env = dynamo_env | {
            "DYN_SYSTEM_PORT": str(port),
            "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": '["generate"]',
        }
        processes[name] = calibration.start(argv, worker_env, workdir / f"{name}.log")
    for name, _, port in workers:
        calibration.wait_for(name, lambda port=port: calibration.http_get(port, "/health")[0] == 200)
    calibration.wait_for(
        "model at the frontend", lambda: MODEL in calibration.http_get(calibration.FRONTEND_PORT, "/v1/models")[1]
    )
    # /v1/models lists the model once the prefill worker registers, before the decode workers
    # are attached (a chat completion then gets HTTP 404): warm up until one goes through.
    deadline = time.monotonic() + 60
    while True:
        warm = Stream("warm-up", 50)
        warm.run()
        if warm.complete():
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"warm-up request failed for 60 s: {warm.error or warm.error_events}")
        time.sleep(1)
    time.sleep(2)  # both decode workers in the router's view


def log_counts(log: Path, patterns: dict[str, str]) -> dict[str, int]:
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    return {key: text.count(pattern) for key, pattern in patterns.items()}


def run_trial(signal_name: str, tokens: int, workdir: Path, python: Path, snapshot: Path) -> dict[str, Any]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    load_at_start = os.getloadavg()[0]
    try:
        start_stack(workdir, python, snapshot, processes)
        streams: list[Stream] = []
        assigned: list[int | None] = []
        for index in range(STREAMS):
            before = [metric_total(port, INFLIGHT_METRIC) for port in DECODE_SYSTEM_PORTS]
            stream = Stream(f"{workdir.name}-{index}", tokens)
            stream.thread.start()
            streams.append(stream)
            worker = None
            deadline = time.monotonic() + 3
            while worker is None and time.monotonic() < deadline and stream.thread.is_alive():
                time.sleep(0.1)
                now = [metric_total(port, INFLIGHT_METRIC) for port in DECODE_SYSTEM_PORTS]
                worker = next((w for w in range(len(now)) if now[w] > before[w]), None)
            assigned.append(worker)
        time.sleep(SIGNAL_AFTER)
        counts = [assigned.count(w) for w in range(len(DECODE_SYSTEM_PORTS))]
        victim_index = counts.index(max(counts))
        victim = processes[f"decode{victim_index}"]
        exited: list[float] = []
        signalled = time.monotonic()
        victim.send_signal(signal.Signals[signal_name])  # the python process itself, as ECS signals PID 1

        def wait_for_exit() -> None:
            victim.wait()
            exited.append(time.monotonic())

        threading.Thread(target=wait_for_exit, daemon=True).start()
        probes: list[Stream] = []
        # Streams last about 16 ms a token: leave them twice that, and a minute.
        give_up = signalled + 60 + tokens * 0.032
        while time.monotonic() < give_up:
            since = time.monotonic() - signalled
            next_probe = PROBE_FIRST + PROBE_EVERY * len(probes)
            if next_probe <= PROBE_LAST and since >= next_probe:
                probe = Stream(f"{workdir.name}-probe{len(probes)}", PROBE_TOKENS)
                probe.thread.start()
                probes.append(probe)
            probes_sent = PROBE_FIRST + PROBE_EVERY * len(probes) > PROBE_LAST
            if probes_sent and exited and not any(s.thread.is_alive() for s in streams + probes):
                break
            time.sleep(0.05)
        gave_up = time.monotonic() >= give_up
        for stream in streams + probes:
            stream.thread.join(timeout=1)
        exit_seconds = round(exited[0] - signalled, 2) if exited else None

        def stream_row(stream: Stream, worker: int | None) -> dict[str, Any]:
            after_exit = [t for t in stream.chunk_times if exited and t > exited[0]]
            outcome = "complete" if stream.complete() else ("failed" if stream.status != 200 else "cut")
            if outcome == "complete" and worker == victim_index and after_exit:
                outcome = "rescued"
            return {
                "worker": None if worker is None else ("victim" if worker == victim_index else "survivor"),
                "outcome": outcome,
                "status": stream.status,
                "chunks": len(stream.chunk_times),
                "chunks_after_signal": sum(1 for t in stream.chunk_times if t > signalled),
                "chunks_after_victim_exit": len(after_exit),
                "last_chunk_seconds_after_signal": round(stream.chunk_times[-1] - signalled, 2)
                if stream.chunk_times
                else None,
                "usage_completion_tokens": stream.usage_tokens,
                "finish_reason": stream.finish_reason,
                "error": stream.error or (stream.error_events[0] if stream.error_events else None),
            }

        # How long the victim took to exit after the last chunk it served itself.
        victim_last = [
            t
            for stream, worker in zip(streams, assigned, strict=True)
            if worker == victim_index
            for t in stream.chunk_times
            if not exited or t <= exited[0]
        ]
        time.sleep(1)  # the frontend's last log lines
        return {
            "load_average_1m_at_start": round(load_at_start, 2),
            "victim_exit_seconds_after_its_last_chunk": round(exited[0] - max(victim_last), 2)
            if exited and victim_last and max(victim_last) > signalled
            else None,
            "victim": f"decode{victim_index}",
            "streams_per_decode_worker": counts,
            "victim_exit_seconds": exit_seconds,
            "victim_exit_code": victim.returncode,
            "gave_up_waiting": gave_up,
            "streams": [stream_row(stream, worker) for stream, worker in zip(streams, assigned, strict=True)],
            "probes": [
                {
                    "sent_seconds_after_signal": round(probe.started - signalled, 2),
                    "status": probe.status,
                    "ok": probe.complete(),
                    "ttft_seconds": round(probe.chunk_times[0] - probe.started, 2) if probe.chunk_times else None,
                    "error": probe.error or (probe.error_events[0] if probe.error_events else None),
                }
                for probe in probes
            ],
            "log_counts": {
                "frontend": log_counts(workdir / "frontend.log", LOG_PATTERNS["frontend"]),
                "victim": log_counts(workdir / f"decode{victim_index}.log", LOG_PATTERNS["victim"]),
            },
        }
    finally:
        stop(processes)


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    victim_streams = [s for t in trials for s in t["streams"] if s["worker"] == "victim"]
    exits = [t["victim_exit_seconds"] for t in trials if t["victim_exit_seconds"] is not None]
    probes = [p for t in trials for p in t["probes"]]
    outcomes = [s["outcome"] for s in victim_streams]
    return {
        "trials": len(trials),
        "victim_streams": len(victim_streams),
        "victim_streams_complete": outcomes.count("complete"),
        "victim_streams_rescued": outcomes.count("rescued"),
        "victim_streams_cut": outcomes.count("cut") + outcomes.count("failed"),
        "victim_exit_seconds_min": min(exits, default=None),
        "victim_exit_seconds_max": max(exits, default=None),
        "victim_exit_codes": sorted({t["victim_exit_code"] for t in trials}, key=str),
        "victim_exit_seconds_after_its_last_chunk_max": max(
            (
                t["victim_exit_seconds_after_its_last_chunk"]
                for t in trials
                if t["victim_exit_seconds_after_its_last_chunk"] is not None
            ),
            default=None,
        ),
        "probes": len(probes),
        "probes_failed": sum(1 for p in probes if not p["ok"]),
        "probe_ttft_seconds_max": max(
            (p["ttft_seconds"] for p in probes if p["ttft_seconds"] is not None), default=None
        ),
    }


def table(sections: dict[str, dict[str, Any]]) -> str:
    header = ("signal", "trials", "victim streams ok", "of which rescued", "cut", "victim exit s", "exit codes")
    header += ("exit after own last chunk max s", "probes failed", "probe TTFT max s")
    rows = [header]
    for name, section in sorted(sections.items(), reverse=True):  # SIGTERM first
        s = section["summary"]
        ok = s["victim_streams_complete"] + s["victim_streams_rescued"]
        rows.append(
            (
                name,
                str(s["trials"]),
                f"{ok}/{s['victim_streams']}",
                str(s["victim_streams_rescued"]),
                str(s["victim_streams_cut"]),
                f"{s['victim_exit_seconds_min']}–{s['victim_exit_seconds_max']}",
                ",".join(str(code) for code in s["victim_exit_codes"]),
                str(s["victim_exit_seconds_after_its_last_chunk_max"]),
                f"{s['probes_failed']}/{s['probes']}",
                str(s["probe_ttft_seconds_max"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--signal", nargs="+", choices=("SIGTERM", "SIGKILL"), default=["SIGTERM", "SIGKILL"], dest="signals"
    )
    parser.add_argument("--trials", type=int, default=3, help="trials per signal, a fresh stack each")
    parser.add_argument("--tokens", type=int, default=2000, help="output tokens of each long stream")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    busy = [port for port in PORTS if port_in_use(port)]
    if busy:
        sys.exit(f"ports in use on {HOST}: {busy} (another calibrate or measure-drain running?)")
    python = dynamo_python()
    with calibration.scratch("dynamo-drain-") as workdir:
        subprocess.run([str(python), "-m", "tests.twin.hf_model", str(workdir / "hf"), MODEL], check=True, cwd=PROJECT)
        snapshot = next((workdir / "hf" / "hub").glob("models--*/snapshots/*"))
        version = calibration.dynamo_version(python)
        sections: dict[str, dict[str, Any]] = {}
        if args.output.exists():
            existing = json.loads(args.output.read_text())
            if existing.get("ai_dynamo") == version:
                sections = existing.get("signals", {})
        for signal_name in args.signals:
            measured = time.strftime("%Y-%m-%d", time.gmtime())
            trials = []
            for number in range(1, args.trials + 1):
                trial_dir = workdir / f"{signal_name}-{number}"
                trial_dir.mkdir()
                trial = run_trial(signal_name, args.tokens, trial_dir, python, snapshot)
                outcomes = [s["outcome"] for s in trial["streams"] if s["worker"] == "victim"]
                print(
                    f"{signal_name} {number}: victim {trial['victim']} exit {trial['victim_exit_seconds']} s"
                    f" code {trial['victim_exit_code']}; its streams {outcomes};"
                    f" probes failed {sum(1 for p in trial['probes'] if not p['ok'])}/{len(trial['probes'])}",
                    flush=True,
                )
                trials.append(trial)
            sections[signal_name] = {
                "measured": measured,
                "setup": {
                    "streams": STREAMS,
                    "tokens": args.tokens,
                    "prompt_tokens": PROMPT_CHARS,
                    "decode_speedup_ratio": DECODE_SPEEDUP_RATIO,
                    "signal_seconds_after_last_stream_started": SIGNAL_AFTER,
                    "probes": {
                        "tokens": PROBE_TOKENS,
                        "first_seconds": PROBE_FIRST,
                        "every_seconds": PROBE_EVERY,
                        "last_seconds": PROBE_LAST,
                    },
                    "workers": {"prefill": 1, "decode": 2, "engine": "dynamo.mocker"},
                    "frontend": {"router_mode": "kv", "migration_limit": MIGRATION_LIMIT},
                    "cpus": os.cpu_count(),
                },
                "summary": summarize(trials),
                "trials": trials,
            }
        document = {"source": "scripts/measure_drain.py", "ai_dynamo": version, "signals": sections}
        calibration.write_json(args.output, document, sort_keys=True)
        print(table(sections))


if __name__ == "__main__":
    main()
