"""Snapshots of each environment's synthesized JSON. A change here is a reviewed change:
say in the pull request what changed and why; never `--snapshot-update` by reflex."""
from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import ENVIRONMENTS


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_synthesized_stack_matches_the_reviewed_snapshot(env, stacks, snapshot_json):
    assert stacks[env] == snapshot_json
