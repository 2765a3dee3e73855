"""Every mistake in an environment file: exit 2, one line per problem, output untouched.

Each case runs ``main.py --config FILE... --outdir DIR`` in its own process (as users do)
against a pre-existing output directory with known content, and declares the problems
it expects: a field path, ``line N`` for TOML syntax, or ``(file) <message start>`` for
a problem with the file as a whole. Each file under tests/bad_inputs/ opens with a
comment saying what is wrong with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, early_result, run_main
from tests.forked_main import Run, run_many

BAD_INPUTS = Path(__file__).resolve().parent / "bad_inputs"
FILE_LEVEL = "(file) "


@dataclass(frozen=True)
class Case:
    files: tuple[str, ...]
    # (file, expected location) per problem; one stderr line each, in any order.
    expected: tuple[tuple[str, str], ...]


def single(file: str, *locations: str) -> Case:
    return Case((file,), tuple((file, location) for location in locations))


CASES: dict[str, Case] = {
    # the file itself
    "missing_file": single("does_not_exist.toml", "(file) file not found"),
    "empty_file": single("empty.toml", "(file) the file is empty"),
    "only_comments": single("only_comments.toml", "name", "region"),
    "not_utf8": single("not_utf8.toml", "(file) not UTF-8 text"),
    # TOML syntax
    "toml_syntax_missing_equals": single("toml_syntax_missing_equals.toml", "line 4"),
    "toml_syntax_duplicate_key": single("toml_syntax_duplicate_key.toml", "line 4"),
    "toml_syntax_unterminated_string": single("toml_syntax_unterminated_string.toml", "line 3"),
    "toml_syntax_unclosed_table_header": single("toml_syntax_unclosed_table_header.toml", "line 4"),
    "toml_syntax_value_missing_at_end": single("toml_syntax_value_missing_at_end.toml", "line 3"),
    # shape: unknown or missing fields, wrong types
    "unknown_field_top_level": single("unknown_field_top_level.toml", "colour"),
    "unknown_field_nested": single("unknown_field_nested.toml", "gpu_fleet.instance_typ"),
    "unknown_section": single("unknown_section.toml", "gpu"),
    "missing_name": single("missing_name.toml", "name"),
    "name_with_uppercase_and_underscore": single("name_with_uppercase_and_underscore.toml", "name"),
    "wrong_type_string_for_integer": single("wrong_type_string_for_integer.toml", "decode.count"),
    "wrong_type_float_for_integer": single("wrong_type_float_for_integer.toml", "decode.max_count"),
    "wrong_type_string_for_boolean": single("wrong_type_string_for_boolean.toml", "load_balancer.internal"),
    "wrong_type_string_for_table": single("wrong_type_string_for_table.toml", "network"),
    "wrong_type_list_for_string": single("wrong_type_list_for_string.toml", "model.name"),
    "unknown_mode": single("unknown_mode.toml", "mode"),
    "backend_type_unknown": single("backend_type_unknown.toml", "backend.type"),
    "backend_without_type": single("backend_without_type.toml", "backend.type"),
    "backend_s3_without_bucket": single("backend_s3_without_bucket.toml", "backend.bucket"),
    "local_state_path_inside_output": single("local_state_path_inside_output.toml", "backend.path"),
    # counts and their order
    "zero_count": single("zero_count.toml", "decode.count"),
    "zero_gpus": single("zero_gpus.toml", "decode.gpus"),
    "negative_max_instances": single("negative_max_instances.toml", "gpu_fleet.max_instances"),
    "min_above_max_count": single("min_above_max_count.toml", "decode.min_count"),
    "min_above_max_instances": single("min_above_max_instances.toml", "gpu_fleet.min_instances"),
    "count_outside_min_max": single("count_outside_min_max.toml", "frontend.count"),
    "desired_instances_outside_min_max": single(
        "desired_instances_outside_min_max.toml", "gpu_fleet.desired_instances"
    ),
    # GPU fleet and tasks
    "unknown_instance_type": single("unknown_instance_type.toml", "gpu_fleet.instance_type"),
    "task_memory_larger_than_instance": single("task_memory_larger_than_instance.toml", "decode.memory"),
    "task_cpu_larger_than_instance": single("task_cpu_larger_than_instance.toml", "decode.cpu"),
    "task_gpus_larger_than_instance": single("task_gpus_larger_than_instance.toml", "decode.gpus"),
    "tensor_parallel_not_matching_gpus": single("tensor_parallel_not_matching_gpus.toml", "decode.gpus"),
    "fleet_max_too_small_for_autoscaled_demand": single(
        "fleet_max_too_small_for_autoscaled_demand.toml", "gpu_fleet.max_instances"
    ),
    "surge_without_a_spare_worker": single("surge_without_a_spare_worker.toml", "gpu_fleet.max_instances"),
    "rollout_unknown": single("rollout_unknown.toml", "decode.rollout"),
    "tasks_per_instance_beyond_eni_limit": single(
        "tasks_per_instance_beyond_eni_limit.toml", "gpu_fleet.instance_type"
    ),
    "shared_memory_not_below_memory": single("shared_memory_not_below_memory.toml", "decode.shared_memory_mib"),
    "prefill_missing_when_disaggregated": single("prefill_missing_when_disaggregated.toml", "prefill"),
    "fargate_memory_not_valid_for_cpu": single("fargate_memory_not_valid_for_cpu.toml", "control_plane.etcd.memory"),
    "etcd_members_two": single("etcd_members_two.toml", "control_plane.etcd_members"),
    # network
    "invalid_cidr": single("invalid_cidr.toml", "network.cidr"),
    "cidr_with_host_bits": single("cidr_with_host_bits.toml", "network.cidr"),
    "vpc_prefix_too_small": single("vpc_prefix_too_small.toml", "network.cidr"),
    "subnet_outside_vpc": single("subnet_outside_vpc.toml", "network.private_subnet_cidrs.1"),
    "subnet_count_not_az_count": single("subnet_count_not_az_count.toml", "network.private_subnet_cidrs"),
    "overlapping_subnets": single("overlapping_subnets.toml", "network.private_subnet_cidrs.0"),
    "one_az_with_alb": single("one_az_with_alb.toml", "network.az_count"),
    "az_count_above_region_zones": single("az_count_above_region_zones.toml", "network.az_count"),
    "region_does_not_exist": single("region_does_not_exist.toml", "region"),
    # ARNs
    "malformed_certificate_arn": single("malformed_certificate_arn.toml", "load_balancer.certificate_arn"),
    "malformed_secret_arn": single("malformed_secret_arn.toml", "model.hf_token_secret_arn"),
    "malformed_waf_arn": single("malformed_waf_arn.toml", "load_balancer.waf_acl_arn"),
    "arn_in_another_region": single("arn_in_another_region.toml", "load_balancer.certificate_arn"),
    "gpu_memory_alarm_below_vllm_reserve": single(
        "gpu_memory_alarm_below_vllm_reserve.toml", "scaling.gpu_memory_alarm_percent"
    ),
    "metrics_workspace_and_interval": single(
        "metrics_workspace_and_interval.toml", "metrics.amp_workspace_arn", "metrics.scrape_interval_seconds"
    ),
    "worker_leaves_no_room_for_gpu_metrics": single("worker_leaves_no_room_for_gpu_metrics.toml", "decode.memory"),
    # image, model, load balancer, logging, schedule
    "image_tag_empty": single("image_tag_empty.toml", "image.tag"),
    "image_tag_with_spaces": single("image_tag_with_spaces.toml", "image.tag"),
    "vllm_argument_with_space": single("vllm_argument_with_space.toml", "model.extra_vllm_args.0"),
    "served_model_name_with_space": single("served_model_name_with_space.toml", "model.served_model_name"),
    "migration_limit_above_maximum": single("migration_limit_above_maximum.toml", "frontend.migration_limit"),
    "idle_timeout_above_alb_maximum": single(
        "idle_timeout_above_alb_maximum.toml", "load_balancer.idle_timeout_seconds"
    ),
    "idle_timeout_zero": single("idle_timeout_zero.toml", "load_balancer.idle_timeout_seconds"),
    "log_retention_not_allowed": single("log_retention_not_allowed.toml", "logging.retention_days"),
    "schedule_not_a_cron_expression": single("schedule_not_a_cron_expression.toml", "schedule.scale_up"),
    # will it fit: the model against the GPUs, the disk, the driver and the health check
    "model_weights_do_not_fit_gpu": single("model_weights_do_not_fit_gpu.toml", "model.tensor_parallel_size"),
    "model_kv_cache_does_not_fit": single("model_kv_cache_does_not_fit.toml", "model.max_model_len"),
    "tensor_parallel_not_dividing_heads": single(
        "tensor_parallel_not_dividing_heads.toml", "model.tensor_parallel_size"
    ),
    "root_volume_too_small_for_weights": single("root_volume_too_small_for_weights.toml", "gpu_fleet.root_volume_gib"),
    "root_volume_throughput_above_iops": single(
        "root_volume_throughput_above_iops.toml", "gpu_fleet.root_volume_throughput_mibps"
    ),
    "cold_start_beyond_health_check": single(
        "cold_start_beyond_health_check.toml", "gpu_fleet.root_volume_throughput_mibps"
    ),
    "gated_model_without_token": single("gated_model_without_token.toml", "model.hf_token_secret_arn"),
    "unknown_model_without_facts": single("unknown_model_without_facts.toml", "model.name"),
    "model_config_json_missing": single("model_config_json_missing.toml", "model.config_json"),
    # several at once
    "several_field_mistakes": single(
        "several_field_mistakes.toml",
        "colour",
        "decode.count",
        "gpu_fleet.instance_type",
        "image.tag",
        "logging.retention_days",
    ),
    "several_cross_field_mistakes": single(
        "several_cross_field_mistakes.toml", "network.az_count", "decode.gpus", "load_balancer.certificate_arn"
    ),
    # across files: what each environment must have to itself
    "duplicate_names": Case(
        ("duplicate_name_first.toml", "duplicate_name_second.toml"), (("duplicate_name_second.toml", "name"),)
    ),
    "shared_s3_state": Case(
        ("shared_s3_state_first.toml", "shared_s3_state_second.toml"), (("shared_s3_state_second.toml", "backend.key"),)
    ),
    "shared_hcp_workspace": Case(
        ("shared_hcp_workspace_first.toml", "shared_hcp_workspace_second.toml"),
        (("shared_hcp_workspace_second.toml", "backend.workspace"),),
    ),
    "shared_local_state": Case(
        ("shared_local_state_first.toml", "shared_local_state_second.toml"),
        (("shared_local_state_second.toml", "backend.path"),),
    ),
    "two_bad_files": Case(
        ("zero_count.toml", "invalid_cidr.toml"),
        (("zero_count.toml", "decode.count"), ("invalid_cidr.toml", "network.cidr")),
    ),
}

# What a previous, good synth left behind; a failed run must not touch any of it.
EXISTING_OUTPUT = {
    "manifest.json": b'{"version": "0.21.0", "stacks": {}}\n',
    "stacks/dynamo-keep/cdk.tf.json": b'{"resource": {"kept": true}}\n',
    "stacks/dynamo-keep/.terraform.lock.hcl": b"# not ours to touch\n",
    "binary.bin": bytes(range(256)),
}


def tree(directory: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every directory (as None) under ``directory``."""
    return {
        str(path.relative_to(directory)): (path.read_bytes() if path.is_file() else None)
        for path in sorted(directory.rglob("*"))
    }


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, bytes | None]
    after: dict[str, bytes | None]
    siblings_before: list[str]
    siblings_after: list[str]


def run_all_cases(root: Path) -> dict[str, Outcome]:
    """Every case as its own `python main.py --config ... --outdir DIR` process (tests/forked_main.py),
    four at a time, each over its own output directory holding a previous good synth's files."""
    runs, before = {}, {}
    for name, case in CASES.items():
        workdir = root / name
        outdir = workdir / "cdktf.out"
        for relative, content in EXISTING_OUTPUT.items():
            (outdir / relative).parent.mkdir(parents=True, exist_ok=True)
            (outdir / relative).write_bytes(content)
        before[name] = (tree(outdir), sorted(os.listdir(workdir)))
        arguments = [argument for file in case.files for argument in ("--config", str(BAD_INPUTS / file))]
        runs[name] = Run((*arguments, "--outdir", str(outdir)), PROJECT_DIR, root / f"{name}.out", root / f"{name}.err")
    results = run_many(PROJECT_DIR / "main.py", list(runs.values()))
    return {
        name: Outcome(
            result.returncode,
            result.stdout,
            result.stderr,
            before[name][0],
            tree(root / name / "cdktf.out"),
            before[name][1],
            sorted(os.listdir(root / name)),
        )
        for name, result in zip(runs, results, strict=True)
    }


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Started with the session (conftest.py, early_work)."""
    return early_result(request.config, "bad_input") or run_all_cases(tmp_path_factory.mktemp("bad-input"))


def shown(file: str) -> str:
    """How main.py names a file given by absolute path inside the project."""
    return str((BAD_INPUTS / file).relative_to(PROJECT_DIR))


def location_of(line: str, file: str) -> str | None:
    prefix = f"{shown(file)}: "
    if not line.startswith(prefix):
        return None
    return line[len(prefix) :]


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name: str, outcomes: dict[str, Outcome]) -> None:
    case, outcome = CASES[name], outcomes[name]
    lines = outcome.stderr.splitlines()
    context = f"stderr of {name}:\n{outcome.stderr}"
    assert outcome.returncode == 2, context
    assert "Traceback" not in outcome.stderr, context
    assert outcome.stdout == "", f"nothing may be printed as if synthesized:\n{outcome.stdout}"
    assert len(lines) == len(case.expected), (
        f"expected one line per problem ({len(case.expected)}), got {len(lines)}; {context}"
    )
    unmatched = list(lines)
    for file, expected in case.expected:
        for line in unmatched:
            rest = location_of(line, file)
            if rest is None:
                continue
            if expected.startswith(FILE_LEVEL):
                found = rest.startswith(expected.removeprefix(FILE_LEVEL))
            else:
                found = rest.startswith(f"{expected}: ") and len(rest) > len(expected) + 10
            if found:
                unmatched.remove(line)
                break
        else:
            pytest.fail(f"no line names {shown(file)} and {expected!r}; {context}")
    assert outcome.after == outcome.before, "the existing output directory changed"
    assert outcome.siblings_after == outcome.siblings_before, "a failed run left files next to the output directory"


def test_every_bad_input_file_has_a_case() -> None:
    used = {file for case in CASES.values() for file in case.files}
    on_disk = {path.name for path in BAD_INPUTS.glob("*.toml")}
    assert on_disk - used == set(), f"files without a case in CASES: {sorted(on_disk - used)}"
    assert used - on_disk == {"does_not_exist.toml"}, (
        f"cases naming files that do not exist: {sorted(used - on_disk - {'does_not_exist.toml'})}"
    )
    assert len(on_disk) >= 30


def test_each_file_says_what_is_wrong_with_it() -> None:
    for path in BAD_INPUTS.glob("*.toml"):
        if path.stat().st_size == 0:
            continue  # empty.toml: saying anything would make it not empty
        assert path.read_bytes().startswith(b"# "), f"{path.name}: open with a comment naming the mistake"


def test_the_good_environments_still_load() -> None:
    """The bad inputs are variations of a good file; the shipped ones must pass the same rules,
    and each is named after its file (the tests find a file's stack by the file's name)."""
    from environments.loader import environment_files, load_all

    warnings: list[str] = []
    names = [environment.name for environment in load_all(environment_files(), warnings=warnings)]
    assert names == sorted(path.stem for path in environment_files()), (
        "set each file's name to its file name (or rename the file)"
    )
    assert warnings == []


@pytest.mark.parametrize("name", ["missing_file", "duplicate_names", "shared_s3_state"])
def test_a_forked_run_is_what_python_main_py_gives(name: str, outcomes: dict[str, Outcome], tmp_path: Path) -> None:
    """tests/forked_main.py stands in for `python main.py`: same exit code, same stdout and stderr."""
    outdir = tmp_path / "cdktf.out"
    arguments = [argument for file in CASES[name].files for argument in ("--config", str(BAD_INPUTS / file))]
    process = run_main(*arguments, "--outdir", str(outdir))
    forked = outcomes[name]
    assert (forked.returncode, forked.stdout, forked.stderr) == (process.returncode, process.stdout, process.stderr)


def test_a_forked_run_reports_an_uncaught_exception_as_python_does(tmp_path: Path) -> None:
    script = tmp_path / "raises.py"
    script.write_text(  # like main.py: imports at the top, the work under the main guard
        "import atexit, sys\n"
        "if __name__ == '__main__':\n"
        "    atexit.register(lambda: print('atexit ran'))\n"
        "    print('args', sys.argv[1:])\n"
        "    raise RuntimeError('boom')\n"
    )
    (result,) = run_many(script, [Run(("a", "b"), tmp_path, tmp_path / "out", tmp_path / "err")])
    process = subprocess.run([sys.executable, str(script), "a", "b"], capture_output=True, text=True, cwd=tmp_path)
    assert (
        (result.returncode, result.stdout)
        == (process.returncode, process.stdout)
        == (1, "args ['a', 'b']\natexit ran\n")
    )
    assert result.stderr.splitlines()[-1] == process.stderr.splitlines()[-1] == "RuntimeError: boom"
    assert "Traceback (most recent call last):" in result.stderr
