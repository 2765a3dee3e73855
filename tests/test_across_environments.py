"""Checks across environment files: what each must have to itself, and networks that overlap.

The errors (a shared name, S3 state object, HCP workspace or local state file) are cases in
test_bad_input.py; here: the overlap warning, and which files a run checks against each other.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from environments.loader import ENVIRONMENTS_DIR, ConfigError, environment_files, load_all
from tests.conftest import run_main

KMS_KEY = "arn:aws:kms:{region}:{account}:key/01234567-89ab-cdef-0123-456789abcdef"


def environment(
    directory: Path, name: str, *, cidr: str = "10.10.0.0/16", region: str = "us-east-1", account: str | None = None
) -> Path:
    """dev.toml under another name, CIDR, region and (through an ARN) account."""
    text = (ENVIRONMENTS_DIR / "dev.toml").read_text()
    for old, new in (
        ('name = "dev"', f'name = "{name}"'),
        ('region = "us-east-1"', f'region = "{region}"'),
        ('cidr = "10.10.0.0/16"', f'cidr = "{cidr}"'),
    ):
        assert text.count(old) == 1, f"environments/dev.toml no longer has {old!r}"
        text = text.replace(old, new)
    if account:
        text = text.replace(
            "\n[backend]", f'\nsecrets_kms_key_arn = "{KMS_KEY.format(region=region, account=account)}"\n\n[backend]', 1
        )
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def overlap_warnings(*paths: Path, others: list[Path] | None = None) -> list[str]:
    warnings: list[str] = []
    load_all(list(paths), others=others, warnings=warnings)
    return warnings


def test_overlapping_networks_in_one_region_are_one_warning_line_and_still_synthesize(tmp_path: Path) -> None:
    first, second = environment(tmp_path, "alpha"), environment(tmp_path, "beta", cidr="10.10.128.0/17")
    outdir = tmp_path / "out"
    result = run_main("--config", str(first), "--config", str(second), "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"{second}: network.cidr: warning: 10.10.128.0/17 overlaps 10.10.0.0/16 of {first} (both in us-east-1"
    )
    assert "Traceback" not in result.stderr
    assert (outdir / "stacks" / "dynamo-alpha" / "cdk.tf.json").is_file() and (
        outdir / "stacks" / "dynamo-beta" / "cdk.tf.json"
    ).is_file()


@pytest.mark.parametrize(
    ("second", "warned"),
    [
        ({"cidr": "10.11.0.0/16"}, False),  # apart
        ({"region": "us-east-2"}, False),  # another region: the warning is per region and account
        ({"account": "111111111111"}, True),  # one account unknown: perhaps the same
    ],
)
def test_which_overlaps_are_warned(tmp_path: Path, second: dict[str, str], warned: bool) -> None:
    warnings = overlap_warnings(environment(tmp_path, "alpha"), environment(tmp_path, "beta", **second))
    assert len(warnings) == (1 if warned else 0), warnings


def test_overlaps_in_different_known_accounts_are_not_warned(tmp_path: Path) -> None:
    apart = overlap_warnings(
        environment(tmp_path, "alpha", account="111111111111"), environment(tmp_path, "beta", account="222222222222")
    )
    together = overlap_warnings(
        environment(tmp_path, "gamma", account="111111111111"), environment(tmp_path, "delta", account="111111111111")
    )
    assert apart == []
    assert len(together) == 1 and "account 111111111111" in together[0]


def test_a_selected_file_is_checked_against_the_environments_not_selected(tmp_path: Path) -> None:
    """`--env qa` alone must not take staging's state: the rest of environments/ is checked too."""
    qa = tmp_path / "qa.toml"
    qa.write_text((ENVIRONMENTS_DIR / "staging.toml").read_text().replace('name = "staging"', 'name = "qa"'))
    staging = ENVIRONMENTS_DIR / "staging.toml"
    with pytest.raises(ConfigError) as raised:
        load_all([qa], others=[staging], shown_as={qa: "qa.toml", staging: "environments/staging.toml"})
    assert raised.value.lines == [
        'qa.toml: backend.key: "dynamo/staging.tfstate" in bucket "example-terraform-state" is already the state of '
        "environments/staging.toml; each environment needs a state of its own: give it another key"
    ]


def test_an_unselected_file_with_its_own_mistakes_does_not_block_a_run(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\n')  # no region: its own run reports that
    (dev,) = load_all([ENVIRONMENTS_DIR / "dev.toml"], others=[broken])
    assert dev.name == "dev"


def test_a_run_that_picks_environments_checks_the_rest_of_environments_dir() -> None:
    from main import unselected_files

    dev = ENVIRONMENTS_DIR / "dev.toml"
    assert unselected_files([dev]) == [path for path in environment_files() if path != dev]
    assert unselected_files(environment_files()) == []
    assert unselected_files([Path("/elsewhere/team.toml")]) == []
