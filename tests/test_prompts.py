"""The `prompts` dataset (Spec-Bench's question file) and the `continuation` task: the
file's format and its errors, a cell per category, prompts continued by every sampler
that serves the task through a Hugging Face model's tokenizer, greedy and at a
temperature, and the acceptance the drafted Hugging Face samplers read off their calls."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from arbench import Observed
from arbench_plugins.datasets.prompts import Prompts

QUESTIONS = [
    {"question_id": 81, "category": "writing",
     "turns": ["Compose an engaging travel blog post about a recent trip to Hawaii.",
               "Rewrite your previous response."]},
    {"question_id": 82, "category": "writing", "turns": ["Draft a short email to a friend."]},
    {"question_id": 101, "category": "math", "turns": ["What is the area of the triangle?"]},
]


def questions(folder: Path, lines: list[str] | None = None) -> Path:
    path = folder / "question.jsonl"
    path.write_text("\n".join(lines or [json.dumps(q) for q in QUESTIONS]) + "\n")
    return path


def test_the_file_is_read_as_spec_bench_writes_it(tmp_path):
    prompts = Prompts(data_file=str(questions(tmp_path))).prompts("test")
    assert [(p.question_id, p.category) for p in prompts] == [
        ("81", "writing"), ("82", "writing"), ("101", "math")]
    assert prompts[0].text == QUESTIONS[0]["turns"][0]  # the first turn, as it stands
    writing = Prompts(data_file=str(questions(tmp_path)), category="writing")
    assert [p.question_id for p in writing.prompts("test")] == ["81", "82"]
    assert Prompts.variants({"data_file": str(questions(tmp_path))}) == {
        "category": ["all", "math", "writing"]}


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2: not JSON"),
    ('{"question_id": 1, "category": "x"}', "line 2: needs 'turns'"),
    ('{"question_id": 1, "turns": ["a"]}', "line 2: needs 'question_id' and a 'category'"),
])
def test_a_malformed_line_is_named(tmp_path, line, message):
    path = questions(tmp_path, [json.dumps(QUESTIONS[0]), line])
    with pytest.raises(ValueError, match=message):
        Prompts(data_file=str(path))


def test_missing_files_categories_and_splits_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="--data-file"):
        Prompts()
    with pytest.raises(FileNotFoundError, match="no file"):
        Prompts(data_file=str(tmp_path / "absent.jsonl"))
    with pytest.raises(ValueError, match="no category 'coding'.*math, writing"):
        Prompts(data_file=str(questions(tmp_path)), category="coding")
    from arbench import Incompatible

    with pytest.raises(Incompatible, match="only test prompts"):
        Prompts(data_file=str(questions(tmp_path))).prompts("train")


def test_a_grid_runs_a_cell_per_category_unless_it_names_one(tmp_path):
    from conftest import plan_cells

    from arbench.run.grid import GridSpec

    path = questions(tmp_path)
    grid = GridSpec(tasks=["continuation"], samplers=["ancestral"], datasets=["prompts"],
                    models=["hf"]).with_overrides(data_file=path)
    cells = plan_cells([grid])
    assert sorted(c.variant for c in cells) == [
        "prompts.category=all", "prompts.category=math", "prompts.category=writing"]
    assert len({c.inputs.data_fingerprint for c in cells}) == 1 and cells[0].inputs.data_fingerprint
    one = plan_cells([grid.with_overrides(["prompts.category=math"])])
    assert [c.params["prompts"]["category"] for c in one] == ["math"] and one[0].variant == ""
    path.write_text(path.read_text() + json.dumps({**QUESTIONS[0], "question_id": 9}) + "\n")
    again = plan_cells([grid])  # the file changed: the cells' data fingerprint with it
    assert again[0].inputs.data_fingerprint != cells[0].inputs.data_fingerprint


def test_a_run_without_the_file_stops_before_any_cell(tmp_path):
    ran = run_cli(["run", "--task", "continuation", "--dataset", "prompts", "--model", "hf",
                   "--data-file", "absent.jsonl", "--results-dir", "runs"], cwd=tmp_path)
    assert ran.returncode == 2 and "no file" in ran.stdout + ran.stderr
    assert not (tmp_path / "runs").exists()


hf_needed = pytest.mark.skipif(
    not os.environ.get("ARBENCH_REQUIRE_TRANSFORMERS")
    and __import__("importlib.util").util.find_spec("transformers") is None,
    reason="the hf extra: pip install -e '.[hf]'")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    from test_hf import save

    return save(tmp_path_factory.mktemp("prompts") / "gpt2", "gpt2")


def view_of(folder: Path, path: Path, **params):
    from arbench.plugin.registry import load_model

    model = load_model("hf", Prompts(data_file=str(path)), torch.device("cpu"),
                       path=str(folder), **params)
    return model, model.data_view(Prompts(data_file=str(path)))


def sampler_of(name: str, **params):
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import SamplerSpec

    return registry().get(SamplerSpec, name).load()(**params)


def continue_with(name, model, view, ids: torch.Tensor, new: int, seed: int = 0, **params):
    """`name`'s (or a sampler's) continuation of `ids` by `new` tokens, and its output."""
    sampler = sampler_of(name, **params) if isinstance(name, str) else name
    each = view.with_length(len(ids) + new)
    mask = torch.zeros(1, each.dims, dtype=torch.bool)
    mask[0, :len(ids)] = True
    values = torch.zeros(1, each.dims, dtype=torch.long)
    values[0, :len(ids)] = ids
    drawn = sampler.sample(model, each, 1, None, torch.Generator().manual_seed(seed),
                           condition=Observed(mask, each.continuous(values)))
    tokens = ((drawn.samples + 1) * (each.num_levels - 1) / 2).round().long()
    return tokens[0], drawn


@hf_needed
def test_each_sampler_keeps_the_prompt_and_draws_the_new_tokens(gpt2, tmp_path):
    model, view = view_of(gpt2, questions(tmp_path))
    ids = view.prompts("test")[2].ids
    for name in ("ancestral", "speculative", "hf-generate"):
        params = {"draft": "hf", "draft_checkpoint": str(gpt2)} if name == "speculative" else {}
        tokens, drawn = continue_with(name, model, view, ids, 6, **params)
        assert torch.equal(tokens[:len(ids)], ids), name
        assert drawn.nfe <= 6 and len(tokens) == len(ids) + 6


@hf_needed
def test_ancestral_continues_through_the_cache_as_through_full_passes(gpt2, tmp_path):
    model, view = view_of(gpt2, questions(tmp_path))
    ids = view.prompts("test")[0].ids
    cached, _ = continue_with("ancestral", model, view, ids, 8)
    model.incremental = lambda n: None  # type: ignore[method-assign]
    full, _ = continue_with("ancestral", model, view, ids, 8)
    assert torch.equal(cached, full)


@hf_needed
def test_greedy_samplers_agree_on_the_most_likely_continuation(gpt2, tmp_path):
    model, view = view_of(gpt2, questions(tmp_path), temperature=0.0)
    ids = view.prompts("test")[1].ids
    greedy, _ = continue_with("hf-generate", model, view, ids, 8)
    x = ids.clone()
    for _ in range(8):  # the argmax of the network's own logits, one token at a time
        logits = model.net(torch.cat([torch.tensor([model.bos]), x])[None]).logits[0, -1]
        x = torch.cat([x, logits.argmax()[None]])
    assert torch.equal(greedy, x)
    for name, params in (("ancestral", {}), ("speculative", {"draft": "hf"}),
                         ("hf-assisted", {"draft_checkpoint": str(gpt2)})):
        if name == "speculative":
            params["draft_checkpoint"] = str(gpt2)
        tokens, _ = continue_with(name, model, view, ids, 8, seed=3, **params)
        assert torch.equal(tokens, greedy), name


@hf_needed
@pytest.mark.parametrize(("name", "temperature"), [
    ("hf-assisted", 1.0), ("speculative", 1.0), ("speculative", 0.7)])
def test_a_draft_that_is_the_target_has_every_value_accepted(gpt2, tmp_path, name,
                                                              temperature):
    """p = q: hf-assisted's acceptance, read off its calls, is 1, as arbench's
    speculative sampling counts it (at temperature 1: transformers 5.25 draws the
    assistant's tokens at T squared, docs/usage.md)."""
    model, view = view_of(gpt2, questions(tmp_path), temperature=temperature)
    ids = view.prompts("test")[0].ids
    params = {"draft_checkpoint": str(gpt2), "k": 3, **(
        {"draft": "hf"} if name == "speculative" else {})}
    _, drawn = continue_with(name, model, view, ids, 12, **params)
    assert drawn.diagnostics["acceptance"] == pytest.approx(1.0, abs=1e-6)
    if name == "speculative":  # hf-assisted reports the most (arbench counts its calls)
        assert drawn.nfe == 3  # 12 tokens, 3 drafted and 1 more per call


@hf_needed
def test_the_continuation_command_prints_a_row_per_category(gpt2, tmp_path):
    path = questions(tmp_path)
    ran = run_cli(["run", "--task", "continuation", "--dataset", "prompts", "--data-file",
                   str(path), "--model", "hf", "--sampler", "ancestral,speculative,hf-assisted",
                   "--set", f"hf.path={gpt2}", "--set", "continuation.max_new_tokens=6",
                   "--set", "speculative.draft=hf", "--set",
                   f"speculative.draft_checkpoint={gpt2}", "--set",
                   f"hf-assisted.draft_checkpoint={gpt2}", "--timing-repeats", "1",
                   "--results-dir", "runs"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for category in ("all", "math", "writing"):
        assert f"prompts.category={category}" in ran.stdout
    from arbench.api import read_records

    read = read_records([cells.parent for cells in (tmp_path / "runs").glob("*/cells")])
    assert {r.status for r in read.records} == {"ok"} and len(read.records) == 9
    math = [r for r in read.records if r.identity.variant == "prompts.category=math"]
    assert len(math) == 3 and {r.extra["n_prompts"] for r in math} == {1}
    assisted = next(r for r in read.records if r.identity.sampler == "hf-assisted")
    assert assisted.diagnostics["sample"]["acceptance"] == pytest.approx(1.0)


@hf_needed
def test_prompt_lookups_acceptance_is_pooled_over_every_prompt_not_the_last(gpt2, tmp_path):
    """hf-prompt-lookup makes no draft calls: its acceptance and MAT are still the cell's."""
    from conftest import checked

    model, view = view_of(gpt2, questions(tmp_path), temperature=0.0)  # greedy loops
    sampler = checked(sampler_of("hf-prompt-lookup", k=3))
    shares = []
    for prompt in view.prompts("test"):
        _, drawn = continue_with(sampler, model, view, prompt.ids[:12].repeat(2), 16)
        shares += [drawn.diagnostics["acceptance"]] if "acceptance" in drawn.diagnostics else []
    pooled = sampler.diagnostics["sample"]
    assert len(set(shares)) > 1  # the calls differ: the last one's would not do
    assert pooled["acceptance"] == pytest.approx(sum(shares) / len(shares))
    assert pooled["mat"] > 1
