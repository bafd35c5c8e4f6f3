"""The plugin guide documents every hook, and its example is the shipped one."""

from __future__ import annotations

import inspect

import pytest
from conftest import REPO, shipped

from arbench.plugin import hookspecs

GUIDE = (REPO / "docs" / "plugins.md").read_text()


def hook_names() -> list[str]:
    return [name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
            if name.startswith("arbench_")]


def test_there_are_hooks_to_document():
    assert len(hook_names()) >= 5


def test_every_hookspec_has_a_section_with_text():
    for name in hook_names():
        heading = f"### `{name}`"
        assert heading in GUIDE, f"docs/plugins.md has no section {heading}"
        body = GUIDE.split(heading, 1)[1].split("\n#", 1)[0]
        assert len(body.split()) >= 20, f"section {heading} says too little"


def test_every_hookspec_has_a_docstring():
    for name in hook_names():
        assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring"


def test_guide_example_matches_the_example_package():
    source = (REPO / "examples/arbench-tempered/arbench_tempered.py").read_text()
    code = source.split('"""\n\n', 1)[1]  # drop the module docstring
    assert code.strip() in GUIDE


def test_every_capability_protocol_is_documented_with_its_members():
    from arbench.plugin.capabilities import PROTOCOLS, members

    for name, protocol in PROTOCOLS.items():
        assert f"`{name}`" in GUIDE and f"`{protocol.__name__}`" in GUIDE, name
        methods, attributes = members(protocol)
        for member in [*methods, *attributes]:
            assert f"`{member}" in GUIDE, f"{protocol.__name__}.{member} is undocumented"


def test_the_guide_covers_each_contract_a_plugin_author_relies_on():
    for topic in ("**Parameters.**", "**Capabilities.**", "**Training.**", "**Output checks.**",
                  "**Conditions.**", "**Budgets and NFE.**", "**Cost: NFE counted by arbench.**",
                  "**Cost: sampler time.**", "`Noisy(values, sigma)`", "network_call(",
                  "`--sweep NAME.KEY=V1,V2`", "ancestral\n  scoring (`nll`) 1",
                  "ContractError"):
        assert topic in GUIDE, f"docs/plugins.md does not cover {topic}"


def python_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_guides_snippets_run(tmp_path):
    """Every python block of docs/plugins.md runs as written: the tempered sampler draws
    digits from the shipped PixelCNN, the JSON reporter writes a report."""
    import torch

    from arbench.report.build import build_report
    from arbench_plugins.datasets.digits import Digits

    tempered, reporter = python_blocks(GUIDE)
    found: dict = {}
    exec(compile(tempered, "docs/plugins.md", "exec"), found)
    exec(compile(reporter, "docs/plugins.md", "exec"), found)
    digits = Digits()
    digits.name = "digits"
    model = shipped("pixelcnn", digits)
    out = found["Tempered"](temperature=0.7).sample(
        model, digits, 2, None, torch.Generator().manual_seed(0))
    assert out.samples.shape == (2, *digits.shape) and out.nfe == digits.dims
    assert found["Json"]().write(build_report([]), tmp_path) == [tmp_path / "values.json"]


def test_the_guides_sampler_refuses_a_model_without_logits():
    from arbench.errors import Incompatible

    found: dict = {}
    exec(compile(python_blocks(GUIDE)[0], "docs/plugins.md", "exec"), found)
    with pytest.raises(Incompatible, match="tempered: .* does not implement CausalLogits"):
        found["Tempered"]().sample(object(), None, 1, None, None)
