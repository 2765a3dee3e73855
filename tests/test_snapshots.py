"""Snapshots of each environment's synthesized JSON. A change here is a reviewed change:
say in the pull request what changed and why; never `--snapshot-update` by reflex."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import ENVIRONMENTS, PROJECT_DIR, unreviewed


@pytest.fixture
def snapshot_json(snapshot):
    # A new environment file has no snapshot yet: syrupy writes the missing one at the end of
    # the session and never rewrites an existing one (what --snapshot-update-new-only does),
    # so adding environments/qa.toml does not fail the suite, and no reviewed snapshot moves.
    snapshot.update_new_snapshots_only = True
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_synthesized_stack_matches_the_reviewed_snapshot(env, stacks, snapshot_json):
    assert stacks[env] == snapshot_json
    (result,) = snapshot_json.executions.values()
    if result.created and not snapshot_json.update_snapshots:
        written = Path(result.snapshot_location).relative_to(PROJECT_DIR)
        unreviewed(
            f"dynamo-{env} had no snapshot: wrote {written}; review it and commit it with environments/{env}.toml"
        )
