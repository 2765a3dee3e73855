"""Same input, byte-identical output: whatever the run, the order of environments or the file's location."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.conftest import ENVIRONMENTS, PROJECT_DIR, run_main


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


def test_second_synth_in_another_order_is_byte_identical(synth_dir, tmp_path):
    outdir = tmp_path / "reordered"
    result = run_main(
        *[argument for env in reversed(sorted(ENVIRONMENTS)) for argument in ("--env", env)], "--outdir", str(outdir)
    )
    assert result.returncode == 0, result.stderr
    first, second = tree(synth_dir), tree(outdir)
    assert set(first) == set(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_a_file_elsewhere_synthesizes_the_same_stack_and_no_host_path_leaks(synth_dir, tmp_path):
    elsewhere = tmp_path / "some" / "other" / "place"
    elsewhere.mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "environments" / "dev.toml", elsewhere / "dev.toml")
    outdir = tmp_path / "out"
    result = run_main("--config", str(elsewhere / "dev.toml"), "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    relative = Path("stacks/dynamo-dev/cdk.tf.json")
    produced = (outdir / relative).read_bytes()
    assert produced == (synth_dir / relative).read_bytes()
    for marker in (str(tmp_path), str(PROJECT_DIR), tempfile.gettempdir(), str(Path.home())):
        assert marker.encode() not in produced
