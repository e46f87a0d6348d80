"""The pretraining pipeline: tied MLM head, corpus units, staged masking, step budgets, resumable fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kbench.errors import InputError
from kbench.pretrain import (MaskingCollator, Sentence, build_corpus, masked_lm, mlm_model, pretrain,
                             save_pretrained, top_predictions)
from kbench.text.masking import IGNORE, MaskVocab
from kbench.text.mentions import MentionDetector
from kbench.train import Examples, TrainConfig, fit

TEXTS = ["Muman Nakel was born in Lagos .", "The quick brown fox jumped over the lazy dog .",
         "Zukun Zesul works for Megor in Paris ."] * 12


@pytest.fixture(scope="module")
def tiny():
    return mlm_model("tiny", "token", seed=0)


def config(**kw):
    return TrainConfig(batch_size=8, learning_rate=1e-3, device="cpu", progress=False, **kw)


def test_decoder_is_tied_to_the_input_embeddings(tiny):
    decoder = tiny.lm.cls.predictions.decoder.weight
    assert decoder is tiny.lm.bert.embeddings.word_embeddings.weight
    corpus = build_corpus(TEXTS, tiny.tokenizer)
    model = mlm_model("tiny", "token", seed=0)
    before = model.lm.bert.embeddings.word_embeddings.weight.detach().clone()
    pretrain(model, corpus, config(max_steps=2))
    after = model.lm.bert.embeddings.word_embeddings.weight
    assert not torch.equal(before, after) and torch.equal(after, model.lm.cls.predictions.decoder.weight)


def test_fresh_head_is_bert_initialised_and_said_so():
    lm, _, description = masked_lm("embedded")
    assert "fresh MLM head" in description
    dense = lm.cls.predictions.transform.dense.weight
    assert abs(dense.std().item() - 0.02) < 0.003 and torch.all(lm.cls.predictions.transform.dense.bias == 0)


def test_a_saved_checkpoint_keeps_its_head(tmp_path, tiny):
    model = mlm_model("tiny", "token", seed=0)
    pretrain(model, build_corpus(TEXTS, model.tokenizer), config(max_steps=2))
    save_pretrained(model, tmp_path / "out")
    lm, tokenizer, description = masked_lm(str(tmp_path / "out"))
    assert "its own MLM head" in description and len(tokenizer) == len(model.tokenizer)
    for name, value in model.lm.cls.state_dict().items():
        assert torch.equal(value, lm.cls.state_dict()[name]), name


def test_forward_loss_is_cross_entropy_at_labelled_positions(tiny):
    batch = tiny.collate(build_corpus(TEXTS[:4], tiny.tokenizer).sentences)
    tiny.eval()
    out = tiny(**batch)
    full = tiny.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    keep = batch["labels"] != IGNORE
    expected = torch.nn.functional.cross_entropy(full[keep], batch["labels"][keep])
    assert torch.allclose(out["loss"], expected, atol=1e-5) and out["logits"].shape[0] == keep.sum()


def test_corpus_units_words_phrases_entities(tiny):
    detector = MentionDetector(["Muman Nakel", "Lagos", "Megor", "Paris"])
    corpus = build_corpus(TEXTS[:3], tiny.tokenizer, units=("word", "phrase", "entity"), detector=detector)
    first, second = corpus.sentences[0], corpus.sentences[1]
    tokens = tiny.tokenizer.convert_ids_to_tokens(first.ids)
    spans = {" ".join(tokens[s:e]) for s, e in first.units["entity"]}
    assert spans == {"mum ##an nak ##el", "lagos"}
    assert (1, 3) in first.units["word"]                      # "muman" = mum ##an
    second_tokens = tiny.tokenizer.convert_ids_to_tokens(second.ids)
    phrases = {" ".join(second_tokens[s:e]) for s, e in second.units["phrase"]}
    assert "the lazy dog" in phrases and any("fox" in p for p in phrases)


def test_chinese_words_come_from_jieba():
    from kbench.encoders import load_tokenizer
    from kbench.data.kbert_datasets import VOCAB
    from kbench.data.manifest import local_path

    try:
        vocab = local_path(VOCAB)
    except Exception as error:   # the data mirror is absent
        pytest.skip(f"no Chinese vocabulary: {error}")
    tokenizer = load_tokenizer("tiny", str(vocab))
    corpus = build_corpus(["我喜欢北京天安门"], tokenizer, units=("word", "phrase"), language="zh")
    sentence = corpus.sentences[0]
    assert (sentence.units["word"][0][1] - sentence.units["word"][0][0]) == 1          # 我
    assert any(e - s == 2 for s, e in sentence.units["phrase"])                       # 喜欢 / 北京


def test_staged_collator_switches_strategy_by_step(tiny):
    collate = MaskingCollator(MaskVocab.of(tiny.tokenizer), 0, [("token", 2), ("phrase", 1), ("entity", 2)])
    seen = []
    sentence = Sentence("x", np.array([101, 2000, 2001, 102]), {"phrase": [(1, 3)], "entity": [(1, 2)]})
    for _ in range(7):
        seen.append(collate.strategy)
        collate([sentence])
    assert seen == ["token", "token", "phrase", "entity", "entity", "entity", "entity"]


def test_collator_rejects_missing_units_and_bad_stages(tiny):
    vocab = MaskVocab.of(tiny.tokenizer)
    with pytest.raises(InputError, match="entity units"):
        MaskingCollator(vocab, 0, "entity")([Sentence("x", np.array([101, 2000, 102]), {})])
    with pytest.raises(InputError, match="unknown masking strategy"):
        MaskingCollator(vocab, 0, "spans")
    with pytest.raises(InputError, match="at least one step"):
        MaskingCollator(vocab, 0, [("token", 0)])


def test_corpus_bad_inputs(tiny):
    with pytest.raises(InputError, match="empty"):
        build_corpus(["  ", ""], tiny.tokenizer)
    with pytest.raises(InputError, match="unknown unit"):
        build_corpus(TEXTS, tiny.tokenizer, units=("clause",))
    with pytest.raises(InputError, match="detector"):
        build_corpus(TEXTS, tiny.tokenizer, units=("entity",))
    with pytest.raises(InputError, match="fewer than one batch"):
        pretrain(tiny, build_corpus(TEXTS[:3], tiny.tokenizer), config(max_steps=1))
    with pytest.raises(InputError, match="step budget"):
        pretrain(tiny, build_corpus(TEXTS, tiny.tokenizer), config())


def test_max_steps_span_epochs_and_count_tokens(tiny):
    model = mlm_model("tiny", "token", seed=0)
    corpus = build_corpus(TEXTS, model.tokenizer)       # 36 sentences: 5 batches of 8 an epoch
    history = pretrain(model, corpus, config(max_steps=12))
    assert history.steps == 12 and len(history.train_loss) == 12
    per_epoch = sum(len(s.ids) for s in corpus.sentences)
    assert 2 * per_epoch < history.tokens < 3 * per_epoch and history.tokens_per_second > 0
    assert history.learning_rate[-1] < history.learning_rate[0] / 5          # the schedule spans the 12 steps


class Crash(RuntimeError):
    pass


def test_an_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    """Killed after its checkpoint at step 6, a run resumed from it ends equal to one never interrupted."""
    corpus_model = mlm_model("tiny", "token", seed=0)
    corpus = build_corpus(TEXTS, corpus_model.tokenizer)
    straight = mlm_model("tiny", "token", seed=0)
    pretrain(straight, corpus, config(max_steps=14, checkpoint_dir=str(tmp_path / "a"), checkpoint_every=3))

    interrupted = mlm_model("tiny", "token", seed=0)
    original = interrupted.forward
    calls = {"n": 0}

    def crashing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 8:
            raise Crash("killed")
        return original(*args, **kw)

    interrupted.forward = crashing
    with pytest.raises(Crash):
        pretrain(interrupted, corpus, config(max_steps=14, checkpoint_dir=str(tmp_path / "b"), checkpoint_every=3))
    assert (tmp_path / "b" / "checkpoint.pt").is_file()
    resumed = mlm_model("tiny", "token", seed=0)
    history = pretrain(resumed, corpus, config(max_steps=14, checkpoint_dir=str(tmp_path / "b"), checkpoint_every=3))
    assert history.resumed_from == 6 and history.steps == 14 and len(history.train_loss) == 14
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert not (tmp_path / "b" / "checkpoint.pt").exists()     # a finished run leaves no checkpoint


def test_checkpoint_options_are_checked():
    with pytest.raises(InputError, match="checkpoint_dir"):
        fit(torch.nn.Linear(1, 1), Examples([1]), None, TrainConfig(checkpoint_every=5), collate=lambda b: b)
    with pytest.raises(InputError, match="max_steps"):
        fit(torch.nn.Linear(1, 1), Examples([1]), None, TrainConfig(max_steps=0), collate=lambda b: b)


def test_top_predictions(tiny):
    """Each row is its own [MASK]'s k likeliest tokens, best first, with its softmax over the whole vocabulary."""
    text = "paris is in [MASK] and [MASK] ."
    rows = top_predictions(tiny.lm, tiny.tokenizer, text, k=3)
    encoded = tiny.tokenizer(text, return_tensors="pt")
    positions = (encoded["input_ids"][0] == tiny.tokenizer.mask_token_id).nonzero().flatten().tolist()
    tiny.lm.eval()
    with torch.no_grad():
        logits = tiny.lm(**encoded).logits[0]
    assert len(rows) == len(positions) == 2
    for row, position in zip(rows, positions):
        probabilities = logits[position].softmax(-1)
        best = probabilities.argsort(descending=True)[:3].tolist()       # the order by hand, best first
        assert [token for token, _ in row] == tiny.tokenizer.convert_ids_to_tokens(best)
        assert [p for _, p in row] == pytest.approx(probabilities[best].tolist(), abs=1e-6)
    assert [t for t, _ in rows[0]] != [t for t, _ in rows[1]] or rows[0] != rows[1]   # each mask read at its place
    with pytest.raises(InputError, match="MASK"):
        top_predictions(tiny.lm, tiny.tokenizer, "no mask here")


def test_the_chinese_pretraining_text_holds_no_dev_or_test_text(tmp_path, mirror):
    """CHECKLIST 8: K-BERT's datasets repeat texts across splits; none of a dev/test text may be pretrained on."""
    from kbench.data import fetch
    from kbench.data.corpora import KBERT_PRETRAINING, pretraining_text
    from kbench.data.kbert_datasets import load_kbert_dataset

    for name in ("kbert/kgs", "kbert/vocab/google_vocab.txt",
                 *(f"kbert/datasets/{d}/{p}.tsv" for d in KBERT_PRETRAINING for p in ("train", "dev", "test"))):
        fetch(name, tmp_path, mirror, progress=False)
    text = pretraining_text("kbert-zh", str(tmp_path))
    joined = lambda split: {"".join(t).strip() if isinstance(t, list) else t.strip() for t in split.texts}
    train = set().union(*(joined(load_kbert_dataset(d, "train", str(tmp_path))) for d in KBERT_PRETRAINING))
    held_out = set().union(*(joined(load_kbert_dataset(d, p, str(tmp_path)))
                             for d in KBERT_PRETRAINING for p in ("dev", "test")))
    assert train & held_out                                  # the raw splits do share texts ...
    assert not set(text.texts) & held_out                    # ... the pretraining text none of them
    assert set(text.texts) == train - held_out - {""}        # and it drops nothing else
    assert len(text.texts) == len(set(text.texts)) and text.language == "zh"
    assert text.vocab.endswith("google_vocab.txt") and "高血压" in text.entity_names


def test_continue_pretraining_saves_a_base_and_refuses_held_out_text(tmp_path):
    from kbench.encoders import load_encoder
    from kbench.pretrain import continue_pretraining

    texts = [f"the {w} cell divides in the {v} tissue ." for w in ("red", "white", "stem", "nerve") for v in ("lung", "skin")]
    config = TrainConfig(batch_size=4, learning_rate=1e-3, max_steps=3, seed=0, progress=False, precision="no")
    out, history = continue_pretraining("tiny", texts, config, tmp_path / "adapted", max_length=16)
    assert history.steps == 3 and (out / "config.json").is_file()
    before, after = load_encoder("tiny", seed=0).model, load_encoder(str(out)).model
    assert not torch.equal(before.embeddings.word_embeddings.weight, after.embeddings.word_embeddings.weight)
    with pytest.raises(InputError, match="excluded"):
        continue_pretraining("tiny", texts, config, tmp_path / "leak", exclude=[["The", "RED", "cell", "divides", "in",
                                                                                  "the", "lung", "tissue", "."]])
    with pytest.raises(InputError, match="empty"):
        continue_pretraining("tiny", [], config, tmp_path / "none")


def test_the_pretraining_core_imports_no_paper_and_papers_register_their_objectives():
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-c", "import sys, kbench.pretrain as p, kbench.cli\n"
                            "print(sorted(p.OBJECTIVES), sorted(m for m in sys.modules if m.startswith('kbench.models.')))"],
                           capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "['ernie', 'mlm', 'wwm'] []"
    from kbench.models import load_objectives

    registry = load_objectives()
    assert {"sensebert", "libert", "kepler", "wklm"} <= set(registry)
    assert registry["wklm"][0] == ("entity",) and registry["kepler"][0] == ()
    assert registry["libert"][1].__module__ == "kbench.models.libert"


def test_an_objective_name_taken_or_bad_is_refused():
    from kbench.pretrain import OBJECTIVES, register_objective, run_pretraining

    def build(base_model, steps, **kw):
        return mlm_model(base_model, "token", **kw)

    with pytest.raises(InputError, match="already registered by"):
        register_objective("mlm", (), build)
    with pytest.raises(InputError, match="units"):
        register_objective("mine", ("sentence",), build)
    with pytest.raises(InputError, match="identifier"):
        register_objective("my objective", (), build)
    register_objective("mine", ("word",), build)
    try:
        register_objective("mine", ("word",), build)   # the same builder again (a reloaded module) replaces it
        assert OBJECTIVES["mine"] == (("word",), build)
    finally:
        del OBJECTIVES["mine"]
    with pytest.raises(InputError, match="unknown objective 'nothing'.*load_objectives"):
        run_pretraining("world", objective="nothing")
