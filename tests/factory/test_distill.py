"""Distillation: losses by hand, loss goes down, resume is exact, the teacher caches are reused."""
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rasa_intent_student.factory.corpus import CorpusConfig  # noqa: E402
from rasa_intent_student.factory.distill import (  # noqa: E402
    CHECKPOINT_FILE,
    CORPUS_MANIFEST_FILE,
    DistillConfig,
    distill,
    embedding_mse,
    pairwise_cosine_loss,
    teacher_cache_path,
    teacher_targets,
    tokenize,
)
from rasa_intent_student.factory.distill.loop import load_checkpoint  # noqa: E402
from rasa_intent_student.evaluation.bench_output import load_bench_protocols, load_bench_quality  # noqa: E402
from rasa_intent_student.factory.distill_card import describe_results  # noqa: E402  # noqa: E402
from rasa_intent_student.factory.teacher import load_teacher  # noqa: E402
from rasa_intent_student.manifest import StudentManifest  # noqa: E402

pytestmark = pytest.mark.factory


def tiny_config(teacher: Path, route_dir: Path, output: Path, **overrides) -> DistillConfig:
    corpus = CorpusConfig(languages=("en", "de", "th"), texts_per_language=40, top_words=300, route_data_dir=str(route_dir))
    values = dict(
        output=str(output), teacher=str(teacher), layers=(0, 3), batch_size=8, max_steps=6, lr=1e-3,
        warmup_steps=2, eval_interval=3, eval_fraction=0.2, max_seq_length=32, threads=1, corpus=corpus,
        mse_weight=1.0, pair_weight=1.0, token_weight=0.0,
    )
    return DistillConfig(**{**values, **overrides})


def test_pairwise_cosine_loss_by_hand():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Same directions, other lengths: cosines are equal, so the loss is zero.
    assert pairwise_cosine_loss(s, 3 * s).item() == pytest.approx(0.0, abs=1e-7)
    # Student sims [[1, 0], [0, 1]], teacher sims [[1, 1], [1, 1]]: (0 + 1 + 1 + 0) / 4.
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert pairwise_cosine_loss(s, t).item() == pytest.approx(0.5)
    # Teacher at 60 degrees apart: cos = 0.5, off-diagonal error 0.5^2, mean 2 * 0.25 / 4.
    t = torch.tensor([[1.0, 0.0], [0.5, 3 ** 0.5 / 2]])
    assert pairwise_cosine_loss(s, t).item() == pytest.approx(0.125)


def test_embedding_mse_by_hand():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert embedding_mse(s, s * 5).item() == pytest.approx(0.0, abs=1e-7)
    # Orthogonal unit vectors are sqrt(2) apart: 2 - 2 cos = 2; the second pair matches.
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert embedding_mse(s, t).item() == pytest.approx(1.0)


def test_loss_goes_down(tiny_teachers, route_dir, tmp_path):
    config = tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "run", max_steps=40, eval_interval=20)
    result = distill(config)
    start, end = result["eval_start"], result["eval"]
    assert end["mse"] < 0.7 * start["mse"]
    assert end["cosine"] > start["cosine"]
    assert [h["step"] for h in result["history"]] == [20, 40]
    student = Path(result["student_dir"])
    assert (student / "modules.json").is_file() and (student / "tokenizer.json").is_file()
    manifest = (tmp_path / "run" / CORPUS_MANIFEST_FILE).read_text(encoding="utf-8")
    assert '"route-train"' in manifest

    # The card: the distillation record travels in student-st/distill.json; results are added from bench output.
    record = json.loads((student / "distill.json").read_text(encoding="utf-8"))
    assert record["steps"] == 40 and record["layers"] == [0, 3] and record["distilled_from"] == str(tiny_teachers["bert"])
    built = tmp_path / "built"
    built.mkdir()
    for name in ("model.onnx", "tokenizer.json"):  # stand-ins: only their checksums are recorded here
        (built / name).write_bytes(name.encode())
    StudentManifest(dim=32, teacher=record["distilled_from"], layers_kept=(0, 3), vocab_size=600,
                    metrics={"distillation": record}).save(built)
    bench = {"quality": {"models": [
        {"name": n, "per_language": {lang: {"accuracy": a} for lang, a in accs.items()}} for n, accs in
        {"teacher-fp32": {"en": 0.80, "de": 0.90}, "pruned-int8": {"en": 0.60, "de": 0.45}, "distilled-int8": {"en": 0.76, "de": 0.90}}.items()]}}
    (tmp_path / "bench.json").write_text("progress lines\n" + json.dumps(bench) + "\n", encoding="utf-8")
    describe_results(built, load_bench_quality(tmp_path / "bench.json"), load_bench_protocols(tmp_path / "bench.json"), command="bench ...")
    described = StudentManifest.load(built)
    assert described.metrics["distillation"]["steps"] == 40 and described.checksums
    card = (built / "README.md").read_text(encoding="utf-8")
    assert "## Distillation" in card and "No distillation" not in card and "(distilled)" in card
    assert "a delta trained at 0.2 x the learning rate on the tokens seen at least 5 times" in card  # the default
    # en 0.76 / 0.80 = 95.0%; mean (0.83 / 0.85) = 97.6%; pruned mean 0.525 / 0.85 = 61.8%.
    assert "| en | 0.800 | 0.600 | 0.760 | 75.0% | 95.0% |" in card
    assert "| **mean** | 0.850 | 0.525 | 0.830 | 61.8% | 97.6% |" in card


def test_resume_continues_at_the_right_step_with_the_same_weights(tiny_teachers, route_dir, tmp_path):
    whole = distill(tiny_config(tiny_teachers["xlmr"], route_dir, tmp_path / "whole"))
    part = tiny_config(tiny_teachers["xlmr"], route_dir, tmp_path / "part")
    first = distill(part, stop_at_step=3)
    assert first["step"] == 3
    assert load_checkpoint(tmp_path / "part" / CHECKPOINT_FILE)["step"] == 3
    # A wrong config is ignored on resume: the checkpoint's own config wins.
    resumed = distill(tiny_config(tiny_teachers["xlmr"], route_dir, tmp_path / "part", lr=1.0), resume=True)
    assert resumed["step"] == 6 and resumed["config"]["lr"] == part.lr
    a = load_checkpoint(tmp_path / "whole" / CHECKPOINT_FILE)["model"]
    b = load_checkpoint(tmp_path / "part" / CHECKPOINT_FILE)["model"]
    assert sorted(a) == sorted(b) and any("layer.1." in name for name in a)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
    assert resumed["eval"]["mse"] == pytest.approx(whole["eval"]["mse"], abs=1e-6)


def test_a_training_seed_keeps_the_corpus_and_its_teacher_cache(tiny_teachers, route_dir, tmp_path):
    """``--seed 1 --corpus-seed 0``: the same corpus, so one shared teacher cache (``--teacher-cache``), other training."""
    from rasa_intent_student import cli
    from rasa_intent_student.commands.distill import config_from_args

    parser = cli.make_parser()
    flags = ["distill", "--output", str(tmp_path / "x")]
    assert config_from_args(parser.parse_args(flags + ["--seed", "3"])).corpus.seed == 3  # one seed by default
    config = config_from_args(parser.parse_args(flags + ["--seed", "1", "--corpus-seed", "0"]))
    assert (config.seed, config.corpus.seed) == (1, 0)
    assert cli.main(flags + ["--stop-at-step", "0"]) == 1  # refused before any work
    shared = tmp_path / "seed0" / "teacher-cache"
    for seed in (0, 1):
        base = tiny_config(tiny_teachers["bert"], route_dir, tmp_path / f"seed{seed}", teacher_cache=str(shared) if seed else "")
        assert distill(replace(base, seed=seed, corpus=replace(base.corpus, seed=0)), stop_at_step=3)["step"] == 3
        if not seed:
            written = {p.name: p.stat().st_mtime_ns for p in shared.iterdir()}
    manifests = [json.loads((tmp_path / f"seed{seed}" / "corpus_manifest.json").read_text()) for seed in (0, 1)]
    assert manifests[0]["sha256"] == manifests[1]["sha256"]
    # The second run found every target in the shared cache: nothing rewritten, no cache of its own.
    assert written and {p.name: p.stat().st_mtime_ns for p in shared.iterdir()} == written
    assert not (tmp_path / "seed1" / "teacher-cache").exists()
    weights = [load_checkpoint(tmp_path / f"seed{seed}" / CHECKPOINT_FILE)["model"] for seed in (0, 1)]
    assert any(not torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_resume_without_checkpoint_says_how_to_fix(tiny_teachers, route_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="without --resume"):
        distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "none"), resume=True)


def test_teacher_cache_is_reused(tiny_teachers, tmp_path):
    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    texts = ["book a table for two", "what did I order last week?", "hello there!"]
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)
    path = teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 32, "h1")
    first, _ = teacher_targets(teacher.model, ids, 1, teacher.pooling, path)
    assert path.is_file() and first.shape == (3, 32)
    # No teacher at all the second time: the embeddings can only come from the cache.
    second, _ = teacher_targets(None, ids, 1, teacher.pooling, path)
    np.testing.assert_array_equal(first, second)
    # Another corpus, prefix or length is another cache file.
    assert teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 32, "h2") != path
    assert teacher_cache_path(tmp_path / "cache", teacher.source, "", teacher.pooling, 32, "h1") != path
    assert teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 64, "h1") != path


def test_config_round_trips_through_a_checkpoint_dict():
    config = DistillConfig(layers=(0, 11), matryoshka_dims=(384, 128), corpus=CorpusConfig(languages=("en", "ko")))
    from dataclasses import asdict

    assert DistillConfig.from_dict(asdict(config)) == config
    with pytest.raises(ValueError, match="Unknown DistillConfig keys"):
        DistillConfig.from_dict({"learning_rate": 1.0})


def test_max_steps_zero_sizes_the_run_to_the_time_budget(tiny_teachers, route_dir, tmp_path):
    config = tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "sized", max_steps=0, max_minutes=0.05, warmup_steps=5, eval_interval=1000)
    result = distill(config)
    sized = result["config"]["max_steps"]
    assert sized > 5 and 5 < result["step"] <= sized
    with pytest.raises(ValueError, match="max_minutes > 0"):
        distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "bad", max_steps=0, max_minutes=0))


def test_translation_loss_by_hand():
    from rasa_intent_student.factory.distill import distill_loss

    config = DistillConfig(mse_weight=0.0, pair_weight=0.0, xling_weight=2.0)
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Row 1 is a translation whose English source the teacher puts at (1, 0): 2 - 2 cos 90deg = 2.
    losses = distill_loss(student, student.clone(), config, torch.tensor([1]), torch.tensor([[3.0, 0.0]]))
    assert losses["xling"].item() == pytest.approx(2.0)
    assert losses["loss"].item() == pytest.approx(4.0)
    # No translation in the batch: no translation loss.
    assert distill_loss(student, student, config)["loss"].item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("route_loss", ["contrastive", "probe"])
def test_every_embedding_term_is_averaged_over_the_matryoshka_prefixes(route_loss):
    """With dims (2, 4) each embedding-level term is the mean of that term on the 2-dim prefix and on the whole."""
    from rasa_intent_student.factory.distill import distill_loss

    torch.manual_seed(0)
    student, teacher = torch.randn(6, 4), torch.randn(6, 4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    probe = torch.nn.Linear(4, 3) if route_loss == "probe" else None
    weights = dict(mse_weight=1.0, pair_weight=1.0, neighbourhood_weight=1.0, route_weight=1.0, route_loss=route_loss)

    def terms(s, t, dims):
        return distill_loss(s, t, DistillConfig(matryoshka_dims=dims, **weights), routes=(s, labels, probe))

    both = terms(student, teacher, (2, 4))
    prefix, whole = terms(student[:, :2], teacher[:, :2], ()), terms(student, teacher, ())
    for name in ("mse", "pair", "neighbourhood", "route"):
        assert both[name].item() == pytest.approx((prefix[name].item() + whole[name].item()) / 2, rel=1e-5), name
        assert prefix[name].item() != pytest.approx(whole[name].item(), rel=1e-3), name  # the prefixes differ


def test_translation_target_pulls_translations_to_their_sources(tiny_teachers, route_dir, tmp_path):
    """The translation target alone brings held-out translations closer to the teacher's embedding of their English
    source; with every weight at zero nothing moves (a random tiny teacher: no comparison between targets)."""
    weights = {"none": dict(mse_weight=0.0, pair_weight=0.0, xling_weight=0.0),
               "translation": dict(mse_weight=0.0, pair_weight=0.0, xling_weight=5.0)}
    runs = {name: distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / name, max_steps=40, eval_interval=40,
                                      eval_fraction=0.1, **w)) for name, w in weights.items()}
    start = runs["none"]["eval_start"]["xling"]
    assert runs["translation"]["eval_start"]["xling"] == pytest.approx(start)
    assert runs["none"]["eval"]["xling"] == pytest.approx(start, rel=1e-3)  # only AdamW weight decay moves it
    assert runs["translation"]["eval"]["xling"] < 0.8 * start
    record = json.loads((Path(runs["translation"]["student_dir"]) / "distill.json").read_text())
    assert record["config"]["xling_weight"] == 5.0 and record["corpus"]["parallel_pairs"]["dialogue"] > 0


def test_ranking_keys_mark_every_text_that_means_the_same():
    from rasa_intent_student.factory.distill.data import ranking_keys

    # Rows 0 and 1 are English; 2 and 3 translate row 0, 4 translates row 9 (not in the batch).
    source_of = np.array([-1, -1, 0, 0, 9, -1, -1, -1, -1, -1])
    keys, positives = ranking_keys([4, 1, 2, 3], source_of)
    assert keys.tolist() == [0, 1, 2, 3, 4, 9]  # the batch plus the sources of its translations
    # Queries in batch order: 4, 2, 3. Row 2's positives: its source 0, itself and row 3 (same source).
    assert positives.tolist() == [[False, False, False, False, True, True],
                                  [True, False, True, True, False, False],
                                  [True, False, True, True, False, False]]


def test_translation_ranking_loss_by_hand():
    from rasa_intent_student.factory.distill.losses import translation_ranking_loss

    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[True, False]])
    # The query is the first key: cos 1 vs 0, so the loss is log(1 + e^-scale).
    query = torch.tensor([[2.0, 0.0]])
    assert translation_ranking_loss(query, keys, positives, 3.0).item() == pytest.approx(np.log1p(np.exp(-3.0)), rel=1e-5)
    # Halfway between both keys: no preference, log 2.
    assert translation_ranking_loss(torch.tensor([[1.0, 1.0]]), keys, positives, 3.0).item() == pytest.approx(np.log(2.0))
    # Two positives out of two keys: nothing to rank against, zero.
    both = torch.tensor([[True, True]])
    assert translation_ranking_loss(query, keys, both, 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_ranking_loss_teaches_each_translation_to_find_its_source():
    """Gradient descent on the ranking loss alone moves free query vectors next to their positive keys."""
    from rasa_intent_student.factory.distill.losses import translation_ranking_loss

    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(8, 16, generator=gen)
    positives = torch.zeros(4, 8, dtype=torch.bool)
    positives[torch.arange(4), torch.tensor([5, 2, 7, 0])] = True
    queries = torch.nn.Parameter(torch.randn(4, 16, generator=gen))
    optimizer = torch.optim.Adam([queries], lr=0.05)
    start = translation_ranking_loss(queries, keys, positives, 20.0).item()
    for _ in range(100):
        optimizer.zero_grad()
        translation_ranking_loss(queries, keys, positives, 20.0).backward()
        optimizer.step()
    nearest = (torch.nn.functional.normalize(queries, dim=-1) @ torch.nn.functional.normalize(keys, dim=-1).T).argmax(1)
    assert nearest.tolist() == [5, 2, 7, 0]
    assert translation_ranking_loss(queries, keys, positives, 20.0).item() < 0.1 * start


def test_ranking_term_trains_the_student_and_settings_are_checked(tiny_teachers, route_dir, tmp_path):
    """With only the ranking term on, the student moves (held-out translation distance changes); with every
    weight at zero it does not. Retrieval itself is checked above: the tiny random teacher puts all texts
    nearly together, so its held-out top-1 is noise."""
    weights = {"none": dict(mse_weight=0.0, pair_weight=0.0, xling_weight=0.0),
               "rank": dict(mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, rank_weight=1.0)}
    runs = {name: distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / name, max_steps=20, eval_interval=20,
                                      eval_fraction=0.1, **w)) for name, w in weights.items()}
    start = runs["none"]["eval_start"]["xling"]
    assert runs["none"]["eval"]["xling"] == pytest.approx(start, rel=1e-3)
    assert abs(runs["rank"]["eval"]["xling"] - start) > 0.02 * start
    assert 0.0 <= runs["rank"]["eval"]["xling_top1"] <= 1.0
    record = json.loads((Path(runs["rank"]["student_dir"]) / "distill.json").read_text())
    assert record["config"]["rank_weight"] == 1.0
    from rasa_intent_student.factory.distill_card import distillation_lines

    card = "\n".join(distillation_lines(record))
    assert "1.0 x in-batch translation ranking (InfoNCE at scale 20.0" in card and "nearest held-out source" in card
    assert "translation ranking" not in "\n".join(distillation_lines(json.loads(
        (Path(runs["none"]["student_dir"]) / "distill.json").read_text())))
    with pytest.raises(ValueError, match="rank_scale=0"):
        DistillConfig(rank_scale=0.0).check()
    with pytest.raises(ValueError, match="rank_weight=-1"):
        DistillConfig(rank_weight=-1.0).check()


@pytest.mark.slow
def test_pack_teacher_is_the_offline_teacher(tmp_path):
    """A pack's compact teacher embeds its texts exactly as the full e5-small-offline teacher does."""
    from rasa_intent_student.constants import DEFAULT_PREFIX
    from rasa_intent_student.factory.distill.pack import compact_state, load_extra, load_pack, write_pack
    from rasa_intent_student.factory.distill.targets import embed

    corpus = CorpusConfig(languages=("en", "ko"), texts_per_language=30, top_words=300, max_django_per_language=5,
                          django_pairs_per_language=5)
    extra = ["지난번 주문 뭐였지?", "book a table for two at 7"]
    write_pack(DistillConfig(corpus=corpus), tmp_path / "pack", extra)
    teacher, data, ids, manifest = load_pack(tmp_path / "pack")
    assert len(ids) == len(data.rows) == manifest["texts"] and data.translation_rows(("dialogue",)).sum() >= 470
    full = load_teacher("e5-small-offline", tmp_path / "work")
    packed = load_extra(tmp_path / "pack")
    compact = embed(teacher.model, [packed[t] for t in extra], 0, "mean")
    reference = embed(full.model, tokenize(full.tokenizer_path, extra, DEFAULT_PREFIX, 128), 1, "mean")
    np.testing.assert_allclose(compact, reference, atol=1e-5)

    # A pack run with trainable embeddings, assembled here with the full teacher, embeds as it did in the pack's ids.
    from safetensors.torch import load_file

    from rasa_intent_student.factory.distill.embeddings import delta_tokens
    from rasa_intent_student.factory.distill.loop import make_student
    from rasa_intent_student.factory.distill.run import RESULT_FILE, STATE_FILE, assemble_student
    from transformers import AutoModel

    run_dir = tmp_path / "run"
    config = DistillConfig(output=str(run_dir), corpus=corpus, max_steps=3, warmup_steps=1, eval_interval=3, batch_size=16,
                           embedding_lr=50.0, embedding_min_count=2, token_weight=0.0)
    distill(config, pack=tmp_path / "pack")
    state = compact_state(load_file(str(run_dir / STATE_FILE)), tmp_path / "pack")
    trained = make_student(teacher.model, config.layers, delta_tokens(state))
    trained.load_state_dict(state, strict=False)
    assert json.loads((run_dir / RESULT_FILE).read_text())["step"] == 3
    assembled = AutoModel.from_pretrained(str(assemble_student(run_dir, "e5-small-offline"))).eval()
    in_pack = embed(trained, [packed[t] for t in extra], 0, "mean")
    np.testing.assert_allclose(embed(assembled, tokenize(full.tokenizer_path, extra, DEFAULT_PREFIX, 128), 1, "mean"), in_pack, atol=1e-4)
    assert not np.allclose(in_pack, compact, atol=1e-3)  # training moved it


def test_a_second_stage_starts_where_the_first_ended(tiny_teachers, route_dir, tmp_path):
    first = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "one", max_steps=12, eval_interval=12))
    second = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "two", max_steps=6, eval_interval=6,
                                 mse_weight=0.0, init_from=str(tmp_path / "one" / CHECKPOINT_FILE)))
    assert second["eval_start"]["mse"] == pytest.approx(first["eval"]["mse"], abs=1e-6)
    assert second["eval_start"]["mse"] < first["eval_start"]["mse"]
    with pytest.raises(FileNotFoundError):
        distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "three", init_from=str(tmp_path / "missing.pt")))


def test_a_second_stage_on_another_corpus_keeps_the_first_stage_word_embeddings(tiny_teachers, tmp_path):
    from rasa_intent_student.factory.distill.embeddings import fold_earlier_delta
    from rasa_intent_student.factory.distill.loop import make_student, trainable_state

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    first = make_student(teacher.model, (0, 3), [5, 6, 7])
    with torch.no_grad():
        first.get_input_embeddings().delta[1:].normal_()  # row 0 (every other token) never trains
        first.encoder.layer[0].output.dense.bias.add_(0.5)
    ids = torch.tensor([[2, 5, 6, 9, 3]])
    before = first(input_ids=ids).last_hidden_state
    # The new corpus's frequent tokens overlap the first's only on 6: its delta has other rows and another size.
    second = make_student(teacher.model, (0, 3), [6, 9])
    with pytest.raises(RuntimeError):
        second.load_state_dict(trainable_state(first), strict=False)
    second = make_student(teacher.model, (0, 3), [6, 9])
    rest = fold_earlier_delta(second, trainable_state(first))
    second.load_state_dict(rest, strict=False)
    torch.testing.assert_close(second(input_ids=ids).last_hidden_state, before)
    assert not second.get_input_embeddings().delta.detach().abs().sum()  # the new delta starts at zero
    torch.testing.assert_close(teacher.model.get_input_embeddings().weight, load_teacher(str(tiny_teachers["bert"]), tmp_path).model.get_input_embeddings().weight)


def test_token_state_loss_by_hand():
    from rasa_intent_student.factory.distill.losses import token_state_loss

    teacher = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [9.0, 9.0]]])  # the third position is padding
    mask = torch.tensor([[1, 1, 0]])
    assert token_state_loss(teacher.clone(), teacher, mask).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [0.0, 0.0]]])
    # Token 1 matches; token 2 is off by (1, -1): |d|^2 / |t|^2 = 2 / 1; the padded position does not count.
    assert token_state_loss(student, teacher, mask).item() == pytest.approx(1.0)


def test_teacher_token_states_are_cached_and_match_the_model(tiny_teachers, tmp_path):
    from rasa_intent_student.factory.distill.targets import collate, token_cache_path, token_capture

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    texts = ["book a table for two", "what did I order last week?", "hello there!"]
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)
    sentences = teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 32, "h1")
    path = token_cache_path(sentences)
    assert path != sentences and path.parent == sentences.parent
    _, (states,) = teacher_targets(teacher.model, ids, 1, teacher.pooling, sentences, [token_capture(sentences)])
    assert sentences.is_file() and path.is_file() and len(states) == 3 and states.states.shape == (sum(map(len, ids)), 32)
    # Row 1, computed alone (no padding), is what the flat cache holds for it.
    input_ids, mask = collate([ids[1]], 1)
    with torch.no_grad():
        alone = teacher.model(input_ids=input_ids, attention_mask=mask).last_hidden_state[0].numpy()
    batch = states.batch([1, 2], len(ids[1]))
    np.testing.assert_allclose(batch[0], alone, atol=2e-3)  # float16 storage
    assert not batch[1, len(ids[2]):].any()  # zero past the shorter text
    _, (again,) = teacher_targets(None, ids, 1, teacher.pooling, sentences, [token_capture(sentences)])  # no teacher: only the caches can answer
    np.testing.assert_array_equal(again.states, states.states)


def test_token_target_brings_token_states_to_the_teacher(tiny_teachers, route_dir, tmp_path):
    """The token target alone lowers the held-out token error; a run without it does not report one."""
    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "tok", max_steps=30, eval_interval=30,
                              mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, token_weight=1.0))
    assert run["eval"]["token"] < 0.8 * run["eval_start"]["token"]
    plain = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "plain", max_steps=3, eval_interval=3))
    assert "token" not in plain["eval"]
    with pytest.raises(ValueError, match="token_weight=-1"):
        DistillConfig(token_weight=-1.0).check()


def test_embedding_delta_trains_only_frequent_corpus_tokens_and_merges_exactly(tiny_teachers, route_dir, tmp_path):
    """With --embedding-lr the rows of frequent corpus tokens move, every other row stays the teacher's,
    the saved student embeds exactly as the trained one, and a resumed run continues with the same delta."""
    from rasa_intent_student.factory.distill.embeddings import DeltaEmbedding, frequent_tokens
    from rasa_intent_student.factory.distill.run import CORPUS_FILE
    from rasa_intent_student.factory.distill.targets import embed
    from transformers import AutoModel

    config = tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "emb", max_steps=12, eval_interval=6, embedding_lr=5.0, embedding_min_count=3)
    distill(config, stop_at_step=6)
    run = distill(config, resume=True)
    assert run["step"] == 12 and run["eval"]["mse"] < run["eval_start"]["mse"]
    straight = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "straight", max_steps=12, eval_interval=6,
                                   embedding_lr=5.0, embedding_min_count=3))
    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    student = AutoModel.from_pretrained(run["student_dir"]).eval()
    torch.testing.assert_close(student.get_input_embeddings().weight,
                               AutoModel.from_pretrained(straight["student_dir"]).get_input_embeddings().weight)
    texts = [json.loads(line)["text"] for line in (tmp_path / "emb" / CORPUS_FILE).read_text(encoding="utf-8").splitlines()]
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)
    trained = frequent_tokens(ids, 3)
    before, after = teacher.model.get_input_embeddings().weight, student.get_input_embeddings().weight
    moved = (before - after).abs().sum(-1) > 0
    assert 0 < int(moved.sum()) <= len(trained) and not moved[[i for i in range(len(moved)) if i not in set(trained)]].any()

    # The wrapper and its merged table embed alike (a checkpoint holds the delta; the saved student, the sum).
    wrapped = DeltaEmbedding(torch.nn.Embedding.from_pretrained(before.clone()), trained)
    with torch.no_grad():
        wrapped.delta.normal_()
    rows = torch.tensor(ids[0])
    torch.testing.assert_close(wrapped(rows), torch.nn.functional.embedding(rows, wrapped.weight))
    assert embed(student, ids[:4], 1, "mean").shape == (4, 32)


def test_embedding_delta_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="embedding_lr=-1"):
        DistillConfig(embedding_lr=-1.0).check()
    with pytest.raises(ValueError, match="embedding_min_count=0"):
        DistillConfig(embedding_min_count=0).check()


def test_same_language_neighbours_are_the_nearest_texts_of_that_language():
    from rasa_intent_student.factory.distill.data import same_language_neighbours

    angles = np.array([0.0, 0.1, 0.5, 1.5, 0.05, 0.2, 3.0])  # rows 0-3 "en", 4-5 "de", 6 "th" (alone)
    targets = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32) * 3.0  # scale does not matter
    langs = ["en", "en", "en", "en", "de", "de", "th"]
    near = same_language_neighbours(targets, [0, 1, 2, 3, 4, 5, 6], langs, k=2)
    assert near[:4].tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]  # never row 4 (de), though it is nearest to row 0
    assert near[4].tolist() == [5, 5] and near[6].tolist() == [6, 6]  # too few texts: repeated, or itself
    assert same_language_neighbours(targets, [3, 0, 5], langs, k=1).tolist() == [[0], [3], [5]]  # among the given rows only


def test_neighbour_batches_keep_each_drawn_text_with_its_neighbours():
    from rasa_intent_student.factory.distill.data import neighbour_batches

    train = np.arange(100, 140)
    near = np.stack([np.roll(train, -1), np.roll(train, -2)], axis=1)  # text i's neighbours: i+1, i+2
    lengths = {row: 1 + row % 7 for row in train.tolist()}
    batches = neighbour_batches(train, near, lengths, batch_size=6, seed=0, epoch=0)
    assert all(len(b) == 6 and len(set(b)) == 6 for b in batches)
    assert set().union(*batches) <= set(train.tolist()) and len(batches) >= 40 * 2 // 6
    together = sum(1 for b in batches for i, row in enumerate(b[:-1]) if b[i + 1] in (row + 1, row + 2, row - 38, row - 39))
    assert together >= len(batches) * 3  # mostly drawn text + neighbours in a row
    assert batches == neighbour_batches(train, near, lengths, 6, 0, 0) != neighbour_batches(train, near, lengths, 6, 0, 1)


def test_neighbour_batches_train_and_bad_values_are_refused(tiny_teachers, route_dir, tmp_path):
    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "near", neighbours=3))
    record = json.loads((Path(run["student_dir"]) / "distill.json").read_text())
    assert record["config"]["neighbours"] == 3 and run["eval"]["mse"] < run["eval_start"]["mse"]
    from rasa_intent_student.factory.distill_card import distillation_lines

    assert "each with its 3 nearest texts of the same language" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match=r"neighbours=64 must be >= 0 and below batch_size=64"):
        DistillConfig(neighbours=64).check()
    with pytest.raises(ValueError, match=r"neighbours=-1"):
        DistillConfig(neighbours=-1).check()


def test_relation_loss_by_hand():
    from rasa_intent_student.factory.distill.losses import relation_loss

    """One head of width 1, two real tokens and one padded: the KL of each relation row, averaged."""
    teacher = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]])  # [q | k | v] of 3 tokens, dim 1
    mask = torch.tensor([[1, 1, 0]])
    assert relation_loss(teacher.clone(), teacher, mask, heads=1).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-7.0, 2.0, 3.0]]])  # the padded token may be anything
    # Teacher rows: token 0 relates to (0, 1) by softmax(1, 0); token 1 by softmax(0, 0) = uniform.
    # The student's rows are uniform, so only token 0's row costs: KL(softmax(1, 0) || uniform), the same for q, k, v.
    p = 1 / (1 + math.exp(-1.0))
    expected = (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))) / 2  # averaged over the two real tokens
    assert relation_loss(student, teacher, mask, heads=1).item() == pytest.approx(expected, rel=1e-5)
    moved = student.clone()
    moved[0, 2] = 100.0
    assert relation_loss(moved, teacher, mask, heads=1).item() == pytest.approx(expected, rel=1e-5)


def test_relation_loss_gradient_is_finite_with_padding():
    from rasa_intent_student.factory.distill.losses import relation_loss

    student = torch.randn(2, 5, 12, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    relation_loss(student, torch.randn(2, 5, 12), mask, heads=2).backward()
    assert torch.isfinite(student.grad).all() and not student.grad[0, 3:].any()  # padded tokens get no gradient


def test_teacher_qkv_is_cached_and_matches_the_last_layer(tiny_teachers, tmp_path):
    from rasa_intent_student.factory.distill.relations import qkv_capture, relation_cache_path
    from rasa_intent_student.factory.distill.targets import collate

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    texts = ["book a table for two", "what did I order last week?", "hello there!"]
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)
    sentences = teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 32, "h1")
    _, (qkv,) = teacher_targets(teacher.model, ids, 1, teacher.pooling, sentences, [qkv_capture(sentences)])
    assert relation_cache_path(sentences).is_file() and qkv.states.shape == (sum(map(len, ids)), 3 * 32)
    # Row 1 alone: the last layer's projections of the states that enter it.
    input_ids, mask = collate([ids[1]], 1)
    attention = teacher.model.encoder.layer[-1].attention.self
    with torch.no_grad():
        entering = teacher.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[-2]
        expected = torch.cat([attention.query(entering), attention.key(entering), attention.value(entering)], -1)[0].numpy()
    np.testing.assert_allclose(qkv.batch([1], len(ids[1]))[0], expected, atol=3e-3)  # float16 storage
    _, (again,) = teacher_targets(None, ids, 1, teacher.pooling, sentences, [qkv_capture(sentences)])  # no teacher: only the caches can answer
    np.testing.assert_array_equal(again.states, qkv.states)


def test_relation_target_brings_the_relations_to_the_teacher(tiny_teachers, route_dir, tmp_path):
    """The relation target alone lowers the held-out relation error; the card names it; bad values are refused."""
    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "rel", max_steps=30, eval_interval=30,
                              mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, relation_weight=1.0))
    assert run["eval"]["relation"] < 0.7 * run["eval_start"]["relation"]
    from rasa_intent_student.factory.distill_card import distillation_lines

    record = json.loads((Path(run["student_dir"]) / "distill.json").read_text())
    assert "1.0 x KL between the teacher's and the student's last-layer self-attention relations" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match="relation_weight=-0.5"):
        DistillConfig(relation_weight=-0.5).check()


def test_teacher_layer_states_are_cached_and_match_that_layer(tiny_teachers, tmp_path):
    from rasa_intent_student.factory.distill.middle import layer_capture, middle_cache_path
    from rasa_intent_student.factory.distill.targets import collate

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    texts = ["book a table for two", "what did I order last week?", "hello there!"]
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)
    sentences = teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 32, "h1")
    _, (states, first) = teacher_targets(teacher.model, ids, 1, teacher.pooling, sentences,
                                         [layer_capture(sentences, 2), layer_capture(sentences, 1)])
    assert middle_cache_path(sentences, 2).is_file() and states.states.shape == (sum(map(len, ids)), 32)
    input_ids, mask = collate([ids[1]], 1)
    with torch.no_grad():  # hidden_states[0] is the embeddings: layer 2 puts out hidden_states[3]
        expected = teacher.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states[3][0].numpy()
    np.testing.assert_allclose(states.batch([1], len(ids[1]))[0], expected, atol=3e-3)  # float16 storage
    assert not np.allclose(first.states, states.states, atol=0.1)
    _, (again,) = teacher_targets(None, ids, 1, teacher.pooling, sentences, [layer_capture(sentences, 2)])  # only the caches can answer
    np.testing.assert_array_equal(again.states, states.states)


def test_one_teacher_pass_fills_every_per_token_cache(tiny_teachers, tmp_path):
    """Sentence embeddings, last-layer tokens, q/k/v and a middle layer come from a single pass over the texts."""
    from rasa_intent_student.factory.distill.middle import layer_capture
    from rasa_intent_student.factory.distill.relations import qkv_capture
    from rasa_intent_student.factory.distill.targets import token_capture

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    texts = [f"remind me about item {i}" for i in range(70)] + ["hello there!"]  # two batches of 64
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)
    sentences = teacher_cache_path(tmp_path / "cache", teacher.source, teacher.prefix, teacher.pooling, 32, "h1")
    captures = [token_capture(sentences), qkv_capture(sentences), layer_capture(sentences, 1)]
    forwards = []
    hook = teacher.model.register_forward_hook(lambda *_: forwards.append(1))
    embeddings, states = teacher_targets(teacher.model, ids, 1, teacher.pooling, sentences, captures)
    assert len(forwards) == 2  # one pass: two batches, whatever the number of caches
    assert [s.states.shape[1] for s in states] == [32, 96, 32] and all(c.cache_file.is_file() for c in captures)
    # A cache lost later is refilled alone, by another single pass; the others are read back unchanged.
    captures[1].cache_file.unlink()
    _, again = teacher_targets(teacher.model, ids, 1, teacher.pooling, sentences, captures)
    assert len(forwards) == 4
    for before, after in zip(states, again):
        np.testing.assert_array_equal(before.states, after.states)
    hook.remove()
    _, cached = teacher_targets(None, ids, 1, teacher.pooling, sentences, captures)  # no teacher: the caches answer
    np.testing.assert_array_equal(cached[2].states, states[2].states)
    assert embeddings.shape == (71, 32)


def test_middle_target_brings_the_first_layer_to_the_teachers_middle(tiny_teachers, route_dir, tmp_path):
    """The middle-layer target alone lowers the held-out middle error; the card names it; bad values are refused."""
    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "mid", max_steps=30, eval_interval=30,
                              mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, middle_weight=1.0, middle_layer=2))
    assert run["eval"]["middle"] < 0.7 * run["eval_start"]["middle"]
    assert "token" not in run["eval"]  # the other layer-wise targets stay off
    from rasa_intent_student.factory.distill_card import distillation_lines

    record = json.loads((Path(run["student_dir"]) / "distill.json").read_text())
    assert "the teacher's after its layer 2 (a middle-layer target)" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match="middle_weight=-1"):
        DistillConfig(middle_weight=-1.0).check()
    with pytest.raises(ValueError, match="middle_layer=-1"):
        DistillConfig(middle_layer=-1).check()
    with pytest.raises(ValueError, match=r"middle_layer=4 is not a layer of the 4-layer teacher; use 0 to 3"):
        distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "mid4", middle_weight=1.0, middle_layer=4))


def test_neighbourhood_loss_by_hand():
    """Three texts: each row's softmax over the other two by cosine / T, KL(teacher || student), averaged."""
    from rasa_intent_student.factory.distill.losses import neighbourhood_loss

    teacher = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    assert neighbourhood_loss(3 * teacher, teacher, 0.1).item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])

    def rows(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        out = []
        for i in range(3):
            logits = np.array([x[i] @ x[j] / 0.1 for j in range(3) if j != i])
            out.append(np.exp(logits) / np.exp(logits).sum())
        return out

    expected = np.mean([(p * np.log(p / q)).sum() for p, q in zip(rows(teacher.numpy()), rows(student.numpy()))])
    assert neighbourhood_loss(student, teacher, 0.1).item() == pytest.approx(expected, rel=1e-5)
    # A lower temperature sharpens each row onto its nearest text: the same error costs more.
    assert neighbourhood_loss(student, teacher, 0.05).item() > neighbourhood_loss(student, teacher, 0.1).item()


def test_neighbourhood_target_trains_and_settings_are_checked(tiny_teachers, route_dir, tmp_path):
    from rasa_intent_student.factory.distill_card import distillation_lines

    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "nb", max_steps=20, eval_interval=20,
                              mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, neighbourhood_weight=1.0))
    # The student trains on this term alone (the loss itself is checked by hand above; on a tiny random
    # teacher the held-out pairwise figure may go either way, so only movement is asserted).
    assert run["eval"]["cosine"] != pytest.approx(run["eval_start"]["cosine"], rel=1e-4)
    record = json.loads((Path(run["student_dir"]) / "distill.json").read_text())
    assert "1.0 x KL between the teacher's and the student's softmax over the batch's other texts by cosine / 0.05" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match="neighbourhood_temperature=0"):
        DistillConfig(neighbourhood_temperature=0.0).check()
    with pytest.raises(ValueError, match="neighbourhood_weight=-1"):
        DistillConfig(neighbourhood_weight=-1.0).check()


def test_supervised_contrastive_loss_by_hand():
    """Four texts, labels [a, a, b, c]: only the two a's have a positive; each is scored against the other three."""
    from rasa_intent_student.factory.distill.losses import supervised_contrastive_loss

    emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 2])
    x = emb.numpy() / np.linalg.norm(emb.numpy(), axis=1, keepdims=True)

    def term(i, p):
        logits = np.array([x[i] @ x[a] / 0.1 for a in range(4) if a != i])
        return -(x[i] @ x[p] / 0.1 - np.log(np.exp(logits).sum()))

    expected = (term(0, 1) + term(1, 0)) / 2
    assert supervised_contrastive_loss(emb, labels, 0.1).item() == pytest.approx(expected, rel=1e-5)
    assert supervised_contrastive_loss(5 * emb, labels, 0.1).item() == pytest.approx(expected, rel=1e-5)  # scale-free
    # The same route nearer, the others farther: the loss falls.
    closer = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [-1.0, 0.0]])
    assert supervised_contrastive_loss(closer, labels, 0.1).item() < expected
    # No text with a positive: zero, and a gradient that is zero rather than NaN.
    lone = emb.clone().requires_grad_(True)
    loss = supervised_contrastive_loss(lone, torch.tensor([0, 1, 2, 3]), 0.1)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(lone.grad).all()


def test_route_set_holds_the_train_split_only_and_draws_evenly(tiny_teachers, route_dir, tmp_path):
    from rasa_intent_student.factory.distill.data import route_training_set
    from rasa_intent_student.routes import load_routes

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    tok = lambda texts: tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)  # noqa: E731
    routes = route_training_set(str(route_dir), ("en", "de", "th"), tok, 6)
    train = load_routes("train", ("en", "de", "th"), route_dir)
    assert routes.names == ["action", "other", "recall"]
    assert routes.ids == tok([e.text for e in train])  # the dev rows never enter
    assert [routes.names[i] for i in routes.labels] == [e.label for e in train]
    drawn = routes.batch(6, seed=0, step=7)
    assert sorted(routes.labels[drawn].tolist()) == [0, 0, 1, 1, 2, 2]
    assert routes.batch(6, seed=0, step=7).tolist() == drawn.tolist()  # --resume draws the same examples
    with pytest.raises(ValueError, match="route_batch_size=5 gives fewer than 2 examples of each of the 3 routes"):
        route_training_set(str(route_dir), ("en", "de", "th"), tok, 5)


def test_route_target_pulls_each_route_together(tiny_teachers, route_dir, tmp_path):
    """The route term alone lowers the supervised contrastive loss of the route TRAIN examples; card line; bad values refused."""
    from rasa_intent_student.factory.distill.data import route_training_set
    from rasa_intent_student.factory.distill.losses import supervised_contrastive_loss
    from rasa_intent_student.factory.distill.loop import make_student
    from rasa_intent_student.factory.distill.targets import embed
    from rasa_intent_student.factory.distill_card import distillation_lines

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    routes = route_training_set(str(route_dir), ("en", "de", "th"),
                                lambda texts: tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32), 6)

    def route_loss(model):
        emb = embed(model, routes.ids, 1, teacher.pooling)
        return supervised_contrastive_loss(torch.from_numpy(emb), torch.from_numpy(routes.labels), 0.1).item()

    before = route_loss(make_student(teacher.model, (0, 3)))
    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "route", max_steps=30, eval_interval=30,
                              mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, route_weight=1.0, route_batch_size=6))
    after = route_loss(load_teacher(run["student_dir"], tmp_path).model)
    assert after < 0.8 * before, (before, after)
    record = json.loads((Path(run["student_dir"]) / "distill.json").read_text())
    assert "1.0 x supervised contrastive loss at temperature 0.1 over 6 route TRAIN examples a step" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match="route_temperature=0"):
        DistillConfig(route_temperature=0.0).check()
    with pytest.raises(ValueError, match="route_weight=-1"):
        DistillConfig(route_weight=-1.0).check()
    # A pack holds no route examples: refused before the pack is read or any target computed.
    with pytest.raises(ValueError, match="route_weight=0.1 is not available in a pack run"):
        distill(DistillConfig(output=str(tmp_path / "pack-run"), route_weight=0.1), pack=tmp_path / "no-such-pack")
    assert not (tmp_path / "pack-run").exists()


def test_route_probe_loss_by_hand():
    """Cross-entropy of softmax((W e/|e| + b) / T); scale-free; a zero probe gives log(routes) and no gradient to the text."""
    from rasa_intent_student.factory.distill.losses import route_probe_loss

    torch.manual_seed(0)
    emb, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    probe = torch.nn.Linear(4, 3)
    unit = emb.numpy() / np.linalg.norm(emb.numpy(), axis=1, keepdims=True)
    logits = (unit @ probe.weight.detach().numpy().T + probe.bias.detach().numpy()) / 0.1
    log_p = logits - logits.max(1, keepdims=True) - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
    expected = -log_p[np.arange(5), labels.numpy()].mean()
    assert route_probe_loss(emb, labels, probe, 0.1).item() == pytest.approx(expected, rel=1e-5)
    assert route_probe_loss(3 * emb, labels, probe, 0.1).item() == pytest.approx(expected, rel=1e-5)
    # A 2-dim prefix is scored by the first 2 columns of the probe.
    prefix_logits = (unit[:, :2] / np.linalg.norm(unit[:, :2], axis=1, keepdims=True)) @ probe.weight.detach().numpy()[:, :2].T
    assert route_probe_loss(emb[:, :2], labels, probe, 1.0).item() == pytest.approx(
        -(prefix_logits + probe.bias.detach().numpy() - np.log(np.exp(prefix_logits + probe.bias.detach().numpy()).sum(1, keepdims=True)))[
            np.arange(5), labels.numpy()].mean(), rel=1e-5)
    zero = torch.nn.Linear(4, 3)
    torch.nn.init.zeros_(zero.weight)
    torch.nn.init.zeros_(zero.bias)
    emb.requires_grad_(True)
    loss = route_probe_loss(emb, labels, zero, 0.1)
    loss.backward()
    assert loss.item() == pytest.approx(np.log(3), rel=1e-6)
    assert emb.grad.abs().max().item() == 0.0


def test_route_probe_trains_beside_the_student_and_resumes_exactly(tiny_teachers, route_dir, tmp_path):
    """--route-loss probe: the probe learns the routes of the TRAIN examples, rides in the checkpoint, and a
    resumed run ends with the same probe and student; card line; an unknown form is refused."""
    from rasa_intent_student.factory.distill.data import route_training_set
    from rasa_intent_student.factory.distill.losses import route_probe_loss
    from rasa_intent_student.factory.distill.targets import embed
    from rasa_intent_student.factory.distill_card import distillation_lines

    settings = dict(max_steps=30, eval_interval=15, lr=1e-2, mse_weight=1.0, pair_weight=0.0, xling_weight=0.0, route_weight=1.0,
                    route_batch_size=6, route_loss="probe")
    whole = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "whole", **settings))
    distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "part", **settings), stop_at_step=15)
    distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "part", **settings), resume=True)
    a, b = (load_checkpoint(tmp_path / run / CHECKPOINT_FILE) for run in ("whole", "part"))
    for name in a["route_probe"]:
        torch.testing.assert_close(a["route_probe"][name], b["route_probe"][name], rtol=0, atol=1e-6)
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=0, atol=1e-6)

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    routes = route_training_set(str(route_dir), ("en", "de", "th"),
                                lambda texts: tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32), 6)
    probe = torch.nn.Linear(a["route_probe"]["weight"].shape[1], 3)
    probe.load_state_dict(a["route_probe"])
    emb = torch.from_numpy(embed(load_teacher(whole["student_dir"], tmp_path).model, routes.ids, 1, teacher.pooling))
    with torch.no_grad():
        assert route_probe_loss(emb, torch.from_numpy(routes.labels), probe, 0.1).item() < 0.5 * np.log(3)  # it learned
    record = json.loads((Path(whole["student_dir"]) / "distill.json").read_text())
    assert "1.0 x cross-entropy of a linear route probe" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match="route_loss='svm' is unknown. Valid: \\['contrastive', 'probe'\\]"):
        DistillConfig(route_loss="svm").check()


def test_average_of_two_students_is_their_mean_and_the_card_says_so(tiny_teachers, route_dir, tmp_path):
    """factory.soup: every tensor is the mean of the sources'; the record names them; mismatched students refused."""
    from safetensors.torch import load_file

    from rasa_intent_student.factory.distill_card import distillation_lines
    from rasa_intent_student.factory.soup import WEIGHTS_FILE, average_students

    a = Path(distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "a"))["student_dir"])
    b = Path(distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "b", lr=3e-3))["student_dir"])
    soup = average_students([a, b], tmp_path / "soup")
    wa, wb, ws = (load_file(str(d / WEIGHTS_FILE)) for d in (a, b, soup))
    assert sorted(ws) == sorted(wa)
    moved = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert moved  # the two runs differ, so the mean is a new student
    for k in wa:
        torch.testing.assert_close(ws[k], (wa[k] + wb[k]) / 2, rtol=0, atol=1e-6)
    record = json.loads((soup / "distill.json").read_text())
    assert record["averaged_from"] == [str(a), str(b)]
    assert "uniform average of 2 students" in "\n".join(distillation_lines(record))
    other = Path(distill(tiny_config(tiny_teachers["xlmr"], route_dir, tmp_path / "c"))["student_dir"])
    with pytest.raises(ValueError, match="does not have the tensors and shapes"):
        average_students([a, other], tmp_path / "bad")
    with pytest.raises(ValueError, match="at least 2 students"):
        average_students([a], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_memory_term_by_hand_and_over_the_matryoshka_prefixes():
    """Each question's InfoNCE over the batch's facts (its own fact positive), scaled cosines; prefixes averaged."""
    from rasa_intent_student.factory.distill import distill_loss

    torch.manual_seed(0)
    facts, questions = torch.randn(5, 4), torch.randn(5, 4)

    def by_hand(f, q, scale=20.0):
        f, q = (x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True) for x in (f, q))
        logits = scale * q @ f.T
        top = logits.max(1, keepdims=True)
        return float(np.mean(top[:, 0] + np.log(np.exp(logits - top).sum(1)) - np.diag(logits)))

    config = DistillConfig(mse_weight=0.0, pair_weight=0.0, memory_weight=0.5)
    student = torch.randn(3, 4)
    losses = distill_loss(student, student, config, memory=(facts, questions))
    assert losses["memory"].item() == pytest.approx(by_hand(facts, questions), rel=1e-5)
    assert losses["loss"].item() == pytest.approx(0.5 * by_hand(facts, questions), rel=1e-5)
    prefixes = distill_loss(student, student, DistillConfig(matryoshka_dims=(2, 4), memory_weight=1.0), memory=(facts, questions))
    assert prefixes["memory"].item() == pytest.approx((by_hand(facts[:, :2], questions[:, :2]) + by_hand(facts, questions)) / 2, rel=1e-5)
    # Questions that sit on their own facts, far from the others: near zero.
    assert distill_loss(student, student, config, memory=(torch.eye(4), torch.eye(4)))["memory"].item() < 1e-6
    assert distill_loss(student, student, config)["memory"].item() == 0.0  # no pairs: no term


def test_memory_set_draws_distinct_pairs_across_languages_and_leaves_benchmark_texts_out(tiny_teachers, tmp_path):
    from rasa_intent_student.factory.corpus import fold
    from rasa_intent_student.factory.distill.data import memory_training_set
    from rasa_intent_student.factory.parallel import memory_pairs

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    tok = lambda texts: tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32)  # noqa: E731
    pairs = memory_pairs()
    languages = ("en", "de", "th")
    memories = memory_training_set(languages, tok, {fold(pairs[0].ask["th"])})  # one banned text drops its pair
    kept = pairs[1:]
    assert len(memories.store) == len(kept)
    assert memories.ids[memories.store[3, 2]] == tok([kept[3].store["th"]])[0]
    assert memories.ids[memories.ask[3, 1]] == tok([kept[3].ask["de"]])[0]
    facts, questions = memories.batch(16, seed=0, step=5)
    pair_of = lambda rows, table: [int(np.nonzero(table == r)[0][0]) for r in rows]  # noqa: E731
    assert pair_of(facts, memories.store) == pair_of(questions, memories.ask)  # row for row the same pair
    assert len(set(pair_of(facts, memories.store))) == 16  # distinct pairs: the other facts are true negatives
    again = memories.batch(16, seed=0, step=5)
    assert again[0].tolist() == facts.tolist() and again[1].tolist() == questions.tolist()  # --resume draws the same
    languages_drawn = {int(np.nonzero(memories.store == r)[1][0]) for r in facts}
    assert languages_drawn == {0, 1, 2}


def test_memory_term_teaches_questions_to_find_their_facts(tiny_teachers, route_dir, tmp_path):
    """The memory term alone lowers the ranking loss of the memory pairs; card line; bad values refused; no pack runs."""
    from rasa_intent_student.factory.distill.data import memory_training_set
    from rasa_intent_student.factory.distill.loop import make_student
    from rasa_intent_student.factory.distill.losses import translation_ranking_loss
    from rasa_intent_student.factory.distill.targets import embed
    from rasa_intent_student.factory.distill_card import distillation_lines

    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    memories = memory_training_set(("en", "de", "th"), lambda texts: tokenize(teacher.tokenizer_path, texts, teacher.prefix, 32), set())
    facts, questions = memories.store[:64].ravel(), memories.ask[:64].ravel()

    def memory_loss(model):
        f, q = (torch.from_numpy(embed(model, [memories.ids[i] for i in rows], 1, teacher.pooling)) for rows in (facts, questions))
        same_pair = torch.from_numpy(np.arange(len(facts))[:, None] // 3 == np.arange(len(facts))[None, :] // 3)
        return translation_ranking_loss(q, f, same_pair, 20.0).item()

    before = memory_loss(make_student(teacher.model, (0, 3)))
    run = distill(tiny_config(tiny_teachers["bert"], route_dir, tmp_path / "memory", max_steps=300, eval_interval=300, lr=1e-3,
                              mse_weight=0.0, pair_weight=0.0, xling_weight=0.0, memory_weight=1.0, memory_batch_size=16))
    after = memory_loss(load_teacher(run["student_dir"], tmp_path).model)
    # A random 32-dim student with frozen random word embeddings has little to go on across scripts (names and
    # numbers): the measured drop is about 0.1 nats; a term not wired into the loss leaves the loss where it was.
    assert after < before - 0.05, (before, after)
    record = json.loads((Path(run["student_dir"]) / "distill.json").read_text())
    assert "1.0 x memory ranking (InfoNCE at scale 20.0 over 16 fact-and-question pairs a step" in "\n".join(distillation_lines(record))
    with pytest.raises(ValueError, match="memory_batch_size=1 must be >= 2"):
        DistillConfig(memory_batch_size=1).check()
    with pytest.raises(ValueError, match="memory_weight=-1"):
        DistillConfig(memory_weight=-1.0).check()
    with pytest.raises(ValueError, match="memory_weight=0.1 is not available in a pack run .* --memory-weight 0"):
        distill(DistillConfig(output=str(tmp_path / "pack-run"), memory_weight=0.1), pack=tmp_path / "no-such-pack")
    assert not (tmp_path / "pack-run").exists()
