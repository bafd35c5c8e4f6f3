"""`arbench train hf`: a GPT-2-format causal LM trained on a text dataset by arbench's
one training loop, written as a ``save_pretrained`` folder.

Presets: ``target`` (4 layers of width 128, about 0.9M parameters), ``draft`` (1 layer
of 64) and ``tiny`` (tests). The tokenizer is a byte-level BPE of ``vocab`` ids trained on
the train split, unless ``tokenizer=DIR`` takes another folder's (a draft needs its
target's): ``arbench train hf --dataset text --set preset=target --out T`` then
``--set preset=draft --set tokenizer=T --out T/draft`` builds the shipped pair (a
target folder's ``draft/`` is its default draft). Training is the transformer's:
cross-entropy of each token given those before it (the start token first), early
stopping on a validation slice of train, scored in bits per token. The folder's
``arbench.json`` keeps the command that rebuilds it bit for bit, its validation and test
bits per token and per byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from arbench import (
    Dataset,
    Incompatible,
    TrainingLoop,
    epoch_batches,
    loop_options,
    partial_path,
    rebuild_command,
    split_train_val,
    training_options,
)
from arbench_plugins.models.hf.tokenized import TokenizedText

START = "<|endoftext|>"
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 16, "layers": 1, "heads": 2, "vocab": 300, "epochs": 1},
    "draft": {"width": 64, "layers": 1, "heads": 2},
    "target": {"width": 128, "layers": 4, "heads": 4},
}
DEFAULTS: dict[str, Any] = {
    "preset": "target", **PRESETS["target"], "vocab": 512, "tokenizer": None, "length": 128,
    "epochs": 40, "patience": 4, "lr": 2e-3, "batch_size": 64, "val_fraction": 0.1,
    "clip_grad": 1.0,
}


def train_tokenizer(text: str, vocab: int) -> Any:
    """A byte-level BPE of `vocab` ids (the start token first) trained on `text`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([text], trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=[START], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return cast(Any, PreTrainedTokenizerFast)(tokenizer_object=bpe, bos_token=START,
                                              eos_token=START)


def train(dataset: Dataset, out: Path, seed: int, family: str, options: dict[str, Any]
          ) -> Path:
    """Train and write the folder `out`; its path."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    opts = training_options(options, DEFAULTS, PRESETS)
    text = getattr(dataset, "text", None)
    if not callable(text):
        raise Incompatible(f"{family} trains on text; '{dataset.name}' has none")
    tokenizer = (AutoTokenizer.from_pretrained(opts["tokenizer"], local_files_only=True,
                                               trust_remote_code=False)
                 if opts["tokenizer"] else train_tokenizer(text("train"), opts["vocab"]))
    levels = len(tokenizer)
    view = TokenizedText(dataset, tokenizer, opts["length"], levels)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    start = int(tokenizer.bos_token_id)
    net: Any = GPT2LMHeadModel(GPT2Config(
        vocab_size=levels, n_positions=opts["length"], n_embd=opts["width"],
        n_layer=opts["layers"], n_head=opts["heads"], bos_token_id=start,
        eos_token_id=start))
    net = net.to(opts["device"] or "cpu")
    train_rows, val_rows = split_train_val(view.load("train"), opts["val_fraction"], generator)

    def loss(batch: torch.Tensor, _: int) -> torch.Tensor:
        return F.cross_entropy(logits(net, batch, start).transpose(1, 2), batch)

    result = TrainingLoop(
        net, torch.optim.AdamW(net.parameters(), lr=opts["lr"], weight_decay=0.01),
        loss=loss, evaluate=lambda _: bits(net, val_rows, start)[0], periods=opts["epochs"],
        batches=lambda _: epoch_batches(train_rows, opts["batch_size"], generator),
        patience=opts["patience"], generator=generator, resume=partial_path(out),
        fingerprint={"seed": seed, **opts}, **loop_options(opts)).run()
    test = view.load("test")
    per_token, total = bits(net, test, start)
    out = Path(out)
    net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    card = {"command": rebuild_command(family, dataset.name, seed, options),
            "seed": seed, "options": opts, "best_epoch": result.period,
            "val_bits_per_token": round(result.score, 4),
            "test_bits_per_token": round(per_token, 4),
            "test_bits_per_byte": round(total / float(view.byte_counts(test).sum()), 4),
            "num_parameters": sum(p.numel() for p in net.parameters()),
            "train_seconds": result.seconds, "torch_version": torch.__version__}
    (out / "arbench.json").write_text(json.dumps(card, indent=1, default=str) + "\n")
    partial_path(out).unlink(missing_ok=True)  # the loop's resume state, now finished
    print(f"best epoch {result.period}: test {per_token:.4f} bits per token, "
          f"{card['test_bits_per_byte']} bits per byte", flush=True)
    return out


def logits(net: Any, ids: torch.Tensor, start: int) -> torch.Tensor:
    """Logits ``(B, T, K)`` of each token given those before it, the start token first."""
    ids = ids.to(net.device)
    inputs = torch.cat([ids.new_full((len(ids), 1), start), ids[:, :-1]], 1)
    result: torch.Tensor = net(input_ids=inputs, use_cache=False).logits.float()
    return result


@torch.no_grad()
def bits(net: Any, x: torch.Tensor, start: int, batch_size: int = 256) -> tuple[float, float]:
    """Mean bits per token of `x` ``(N, T)`` and their total; leaves `net` in eval mode."""
    net.eval()
    total = sum(F.cross_entropy(logits(net, chunk, start).transpose(1, 2), chunk.to(net.device),
                                reduction="sum").item() for chunk in x.split(batch_size))
    return total / (x.numel() * math.log(2)), total / math.log(2)
