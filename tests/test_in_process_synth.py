"""A component built in a bare stack in the pytest process (cdktf Testing), as construct-level tests do.

conftest.py has enabled the speed-ups for the session, so such a test costs about a second
instead of the full provider import (~10 s, ~1.2 GB).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cdktf

from components import _speedups
from components.aws import PACKAGE
from components.fargate_cluster import FargateCluster


def test_fargate_cluster_synthesizes_in_a_bare_stack_with_container_insights(tmp_path: Path) -> None:
    # cdktf.Testing, not Testing: pytest would try to collect a class named Test* as a test.
    # An outdir of the test's own: without one, the app leaves a directory under /tmp.
    stack = cdktf.TerraformStack(cdktf.Testing.app(outdir=str(tmp_path)), "bare")
    FargateCluster(stack, "fargate", name="dynamo-test")
    synthesized = json.loads(cdktf.Testing.synth(stack))
    (cluster,) = synthesized["resource"]["aws_ecs_cluster"].values()
    assert cluster["name"] == "dynamo-test-fargate"
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]
    (capacity_providers,) = synthesized["resource"]["aws_ecs_cluster_capacity_providers"].values()
    assert capacity_providers["capacity_providers"] == ["FARGATE"]


def test_in_process_stacks_import_only_the_provider_modules_they_use() -> None:
    imported = [name for name in sys.modules if name.startswith(f"{PACKAGE}.") and name.count(".") == 1]
    if _speedups.plain_import_requested():
        assert not _speedups.is_enabled()
    else:
        assert _speedups.is_enabled()
        assert len(imported) < 60, f"{len(imported)} provider submodules imported in the test process"
