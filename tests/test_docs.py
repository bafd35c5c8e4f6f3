"""The plugin guide documents every hook, and its example is the shipped one."""

from __future__ import annotations

import inspect

from conftest import REPO

from arbench import hookspecs

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
    from arbench.capabilities import PROTOCOLS, members

    for name, protocol in PROTOCOLS.items():
        assert f"`{name}`" in GUIDE and f"`{protocol.__name__}`" in GUIDE, name
        methods, attributes = members(protocol)
        for member in [*methods, *attributes]:
            assert f"`{member}" in GUIDE, f"{protocol.__name__}.{member} is undocumented"


def test_the_guide_covers_each_contract_a_plugin_author_relies_on():
    for topic in ("**Parameters.**", "**Capabilities.**", "**Training.**", "**Output checks.**",
                  "**Conditions**", "**Budgets and NFE.**", "**Cost: NFE counted by arbench**",
                  "**Cost: sampler time**", "`Noisy(values, sigma)`",
                  "`--sweep NAME.KEY=V1,V2`", "ancestral\n  scoring (`nll`) 1",
                  "ContractError"):
        assert topic in GUIDE, f"docs/plugins.md does not cover {topic}"
