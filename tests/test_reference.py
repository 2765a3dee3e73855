"""The README's configuration reference is the schema's, not a hand-kept copy."""

from environments.reference import BEGIN, END, README, render, replace_block


def test_readme_configuration_reference_matches_the_schema():
    readme = README.read_text()
    assert BEGIN in readme and END in readme
    assert replace_block(readme, render()) == readme, (
        "README.md is stale: run `make reference` (python -m environments.reference --write)"
    )


def test_reference_lists_every_section_and_default():
    block = render()
    for heading in (
        "[network]",
        "[gpu_fleet]",
        "[image]",
        "[model]",
        "[frontend]",
        "[decode]",
        "[prefill]",
        "[control_plane.etcd]",
        "[load_balancer]",
        "[logging]",
        "[schedule]",
    ):
        assert f"### `{heading}`" in block, heading
    assert '| `instance_type` | str | `"g6e.2xlarge"`' in block
