"""The `hf` model family: local Hugging Face folders (tiny GPT-2 and Llama configurations
with random weights, saved here), their logits and cache against transformers' own
forward, the clear errors for bad folders, and arbench's samplers on them end to end.
The hub is unreachable (HF_HUB_OFFLINE, set in conftest): nothing is downloaded."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from conftest import run_cli

if not os.environ.get("ARBENCH_REQUIRE_TRANSFORMERS"):  # CI sets it: there a skip fails
    pytest.importorskip("transformers", reason="the hf extra: pip install -e '.[hf]'")

from arbench import CheckpointError, Incompatible  # noqa: E402
from arbench.plugin.registry import load_model  # noqa: E402
from arbench_plugins.datasets.text import Text  # noqa: E402
from arbench_plugins.models.hf.tokenized import TokenizedText  # noqa: E402
from arbench_plugins.models.hf.training import train_tokenizer  # noqa: E402

LENGTH = 16
SHIPPED = Path(__file__).parents[1] / "plugins/models/hf/checkpoints/hf-text"


def save(folder: Path, kind: str, vocab: int = 300) -> Path:
    """A tiny causal LM of `kind` (gpt2, llama) or a masked one (bert), saved with its
    tokenizer by save_pretrained."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    torch.manual_seed(0)
    words = train_tokenizer(Text().text("train")[:20000], vocab)
    size = len(words)
    net = {"gpt2": lambda: GPT2LMHeadModel(GPT2Config(
               vocab_size=size, n_positions=64, n_embd=16, n_layer=2, n_head=2,
               bos_token_id=0, eos_token_id=0)),
           "llama": lambda: LlamaForCausalLM(LlamaConfig(
               vocab_size=size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
               num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
               bos_token_id=0, eos_token_id=0)),
           "bert": lambda: BertForMaskedLM(BertConfig(
               vocab_size=size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32))}[kind]()
    net.save_pretrained(folder)
    words.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {kind: save(root / kind, kind) for kind in ("gpt2", "llama")}


def hf(folder: Path, dataset=None, **params):
    return load_model("hf", dataset or Text(), torch.device("cpu"), path=str(folder),
                      length=LENGTH, **params)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_the_logits_are_the_models_own_after_its_start_token(folders, kind):
    from transformers import AutoModelForCausalLM

    model = hf(folders[kind])
    x = model.data_view(Text()).load("test")[:3]
    reference = AutoModelForCausalLM.from_pretrained(folders[kind]).eval()
    with torch.no_grad():
        expected = reference(torch.cat([torch.zeros(3, 1, dtype=torch.long), x], 1)).logits
    torch.testing.assert_close(model.logits(x), expected[:, :-1], atol=1e-5, rtol=1e-5)
    nll = torch.nn.functional.cross_entropy(expected[:, :-1].transpose(1, 2), x,
                                            reduction="none").sum(1)
    torch.testing.assert_close(model.log_prob(x), -nll, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_the_cache_steps_and_windows_give_the_full_passs_logits(folders, kind):
    """Ancestral steps, then windows at rows' own starts that move back and forth as
    verification's do (a rejected value is cropped from the cache and recomputed)."""
    model = hf(folders[kind])
    generator = torch.Generator().manual_seed(3)
    x = torch.randint(0, model.levels, (3, LENGTH), generator=generator)
    full = model.logits(x)
    cache, previous = model.incremental(3), None
    for i in range(4):
        step = cache.logits(previous)
        torch.testing.assert_close(step, full[:, i], atol=1e-5, rtol=1e-5)
        previous = x[:, i]
    cache, starts, width = model.incremental(3), torch.tensor([0, 0, 0]), 5
    while bool((starts < LENGTH).any()):
        got = cache.window(x, starts, width)
        where = starts[:, None] + torch.arange(width)
        inside = where < LENGTH
        expected = model.logits(x)[torch.arange(3)[:, None], where.clamp(max=LENGTH - 1)]
        torch.testing.assert_close(got[inside], expected[inside], atol=1e-5, rtol=1e-5)
        assert cache.step_positions >= width or bool((where >= LENGTH).any())
        starts = (starts + torch.randint(1, width + 1, (3,), generator=generator)).clamp(
            max=LENGTH)
        later = torch.arange(LENGTH) >= starts[:, None]
        x = x.where(~later, torch.randint(0, model.levels, (3, LENGTH), generator=generator))


def test_the_text_is_read_as_the_tokenizers_ids_in_examples_of_length_tokens(folders):
    model = hf(folders["gpt2"])
    view = model.data_view(Text())
    assert isinstance(view, TokenizedText) and view.name == "text"
    test = view.load("test")
    assert test.shape[1] == LENGTH and test.dtype == torch.long
    assert int(test.min()) >= 0 and int(test.max()) < view.num_levels == model.levels
    joined = view.tokenizer.decode(test.flatten().tolist())
    assert Text().text("test").startswith(joined)
    assert int(view.byte_counts(test).sum()) == len(joined.encode())


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such folder"):
        hf(tmp_path / "absent")


def test_without_a_folder_the_shipped_pair_loads_with_its_draft():
    """`--model hf` alone: the shipped target, whose draft speculative's draft=hf and
    hf-assisted use when given no folder."""
    from arbench_plugins.samplers.drafts import load_draft

    model = load_model("hf", Text(), torch.device("cpu"))
    card = json.loads((SHIPPED / "arbench.json").read_text())
    assert model.net.config.n_positions == card["options"]["length"] == 128  # prompts fit
    assert model.length == LENGTH * 2 and model.draft is not None  # examples: hf.length
    draft = load_draft("hf", model.view, torch.device("cpu"), list(range(model.length)), {})
    assert draft.model.net.config.n_layer == model.draft.net.config.n_layer == 1
    assert model.net.config.n_layer == 4


def test_a_model_that_is_not_causal_is_refused(tmp_path):
    with pytest.raises(Incompatible, match="not a causal language model.*BertForMaskedLM"):
        hf(save(tmp_path / "bert", "bert"))


def test_a_folder_that_asks_for_remote_code_runs_nothing_from_it(folders, tmp_path):
    import shutil

    folder = tmp_path / "remote"
    shutil.copytree(folders["gpt2"], folder)
    marker = tmp_path / "ran"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(Incompatible, match="remote code"):
        hf(folder)
    assert not marker.exists()


def test_a_draft_whose_tokenizer_differs_from_the_targets_is_refused(folders, tmp_path):
    view = hf(folders["gpt2"]).data_view(Text())
    other = save(tmp_path / "other", "llama", vocab=280)
    with pytest.raises(Incompatible, match="tokenizer differs"):
        hf(other, view)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_arbench_runs_ancestral_and_speculative_on_a_folder(folders, kind, tmp_path):
    """The command of the docs on a saved folder, with the other family as the draft."""
    draft = folders["llama" if kind == "gpt2" else "gpt2"]
    ran = run_cli(["run", "--task", "density,unconditional", "--model", "hf", "--dataset",
                   "text", "--sampler", "ancestral,speculative,hf-generate,hf-assisted",
                   "--results-dir", "runs", "--set", f"hf.path={folders[kind]}",
                   "--set", f"hf.length={LENGTH}", "--set", "unconditional.n_samples=4",
                   "--set", "speculative.draft=hf",
                   "--set", f"speculative.draft_checkpoint={draft}",
                   "--set", f"hf-assisted.draft_checkpoint={draft}"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "| hf " in ran.stdout and "speedup" in ran.stdout
    from arbench.api import read_records

    read = read_records([cells.parent for cells in (tmp_path / "runs").glob("*/cells")])
    records = {(r.identity.task, r.identity.sampler): r for r in read.records}
    assert {key: r.reason for key, r in records.items() if r.status != "ok"} == {}
    assert len(records) == 8
    ancestral, generate, speculative, assisted = (records["unconditional", s] for s in (
        "ancestral", "hf-generate", "speculative", "hf-assisted"))
    assert ancestral.cost.nfe == generate.cost.nfe == LENGTH
    assert generate.cost.positions == LENGTH  # one new token per call, counted by arbench
    for drafted in (speculative, assisted):
        assert drafted.cost.nfe < LENGTH  # drafts were accepted
        figures = drafted.diagnostics["sample"]
        assert figures["draft_nfe"] > 0 and figures["mat"] > 1
        assert drafted.cost.sampler_time_s > 0 and drafted.cost.reference_timings_s
    for drafted in (speculative, assisted):  # hf-assisted's read off its target calls
        assert 0 < drafted.diagnostics["sample"]["acceptance"] <= 1
    assert "acceptance" in ran.stdout and "mat" in ran.stdout


@pytest.mark.parametrize("name", ["hf-generate", "hf-assisted", "hf-prompt-lookup"])
def test_hugging_faces_decoding_gets_a_verdict_on_a_random_transformers_model(name):
    """Its claim of the model's distribution is tested where it can run: the hf family's
    random GPT-2 (its own random draft for hf-assisted); on the table models it cannot."""
    from arbench.plugin.registry import registry
    from arbench.plugin.specs import SamplerSpec
    from arbench.run.certify import certify_sampler

    sampler = registry().get(SamplerSpec, name).load()()
    samples = 10_000 if name == "hf-generate" else 1_000  # row by row: about 11 s
    verdicts = {v.model: v for v in certify_sampler(sampler, samples)}
    assert verdicts["hf"].passed, verdicts["hf"]
    assert verdicts["table"].passed is None and "Hugging Face model" in verdicts["table"].reason


def test_the_random_transformers_model_fails_a_sampler_that_ignores_the_history():
    from test_exactness import HistoryBlind

    from arbench.run.certify import certify_sampler

    verdicts = {v.model: v for v in certify_sampler(HistoryBlind(), 2_000)}
    assert verdicts["hf"].passed is False and verdicts["table"].passed is False


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny target trained by `arbench train hf`, and a draft with its tokenizer in the
    target's draft/ subfolder."""
    root = tmp_path_factory.mktemp("trained")
    for preset, out, extra in (("tiny", "target", []),
                               ("tiny", "target/draft", ["--set", "tokenizer=target"])):
        ran = run_cli(["train", "hf", "--dataset", "text", "--set", f"preset={preset}",
                       "--set", "length=16", *extra, "--out", out], cwd=root)
        assert ran.returncode == 0, ran.stdout + ran.stderr
    return root / "target"


def test_training_writes_a_folder_that_loads_with_its_draft_and_its_card(trained):
    card = json.loads((trained / "arbench.json").read_text())
    assert card["command"] == "arbench train hf --dataset text --set length=16 --set preset=tiny"
    assert 0 < card["test_bits_per_byte"] < card["test_bits_per_token"]
    model = hf(trained)
    assert model.draft is not None and model.draft.view is model.view
    x = model.view.load("test")[:2]
    nll = -model.log_prob(x).sum() / math.log(2)
    assert float(nll) / x.numel() == pytest.approx(card["test_bits_per_token"], abs=0.5)


def test_training_is_rebuilt_bit_for_bit_by_its_command(trained, tmp_path):
    command = json.loads((trained / "arbench.json").read_text())["command"].split()[1:]
    ran = run_cli([*command, "--out", "again"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (trained / name).read_bytes(), name


def test_the_targets_own_draft_is_counted_as_the_draft_not_as_the_target():
    """hf-assisted with the shipped pair: the assistant's forwards are draft calls."""
    from arbench.run.counting import counter_of, draft_model

    model = load_model("hf", Text(), torch.device("cpu"))
    counter = counter_of(model)
    drafts = counter_of(draft_model(model.draft))
    assert drafts is not counter
    with counter.counting(), drafts.counting():
        model.draft.net(input_ids=torch.zeros(1, 3, dtype=torch.long))
    assert counter.evaluations == 0 and drafts.evaluations == 1


def test_bits_per_byte_are_the_total_bits_over_the_texts_bytes(folders):
    """The density task's nll_bpb against transformers' own forward and the tokenizer's
    decoding: total bits over total UTF-8 bytes, as language-model papers pool them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arbench_plugins.metrics.likelihood import BitsPerByte

    model = hf(folders["gpt2"])
    x = model.data_view(Text()).load("test")[:5]
    reference = AutoModelForCausalLM.from_pretrained(folders["gpt2"]).eval()
    with torch.no_grad():
        logits = reference(torch.cat([torch.zeros(5, 1, dtype=torch.long), x], 1)).logits
    nats = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), x,
                                             reduction="none").sum(1)
    words = AutoTokenizer.from_pretrained(folders["gpt2"])
    total_bytes = sum(len(words.decode(row).encode()) for row in x.tolist())
    expected = float(nats.sum()) / math.log(2) / total_bytes
    measured = BitsPerByte().per_example(-model.log_prob(x), model.view.byte_counts(x))
    assert float(measured.mean()) == pytest.approx(expected, rel=1e-5)
