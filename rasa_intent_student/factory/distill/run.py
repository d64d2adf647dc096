"""``distill``: corpus and parallel pairs, the teacher's targets, the training loop, the distilled student."""
import json
import logging
import shutil
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from rasa_intent_student.constants import DISTILL_RECORD_FILE
from rasa_intent_student.factory.corpus import evaluation_texts, save_corpus
from rasa_intent_student.factory.distill.config import DistillConfig
from rasa_intent_student.factory.distill.data import build_training_set, memory_training_set, route_training_set
from rasa_intent_student.factory.distill.embeddings import delta_tokens, fold_earlier_delta, frequent_tokens, merge_delta
from rasa_intent_student.factory.distill.middle import layer_capture
from rasa_intent_student.factory.distill.loop import load_checkpoint, make_student, resolve_device, train, trainable_state
from rasa_intent_student.factory.distill.relations import qkv_capture
from rasa_intent_student.factory.distill.targets import teacher_cache_path, teacher_targets, token_capture, tokenize
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "ckpt.pt"
CORPUS_FILE = "corpus.jsonl"
CORPUS_MANIFEST_FILE = "corpus_manifest.json"
HISTORY_FILE = "history.json"
RESULT_FILE = "result.json"  # the run's summary: config, teacher, steps, held-out figures
STUDENT_DIR = "student-st"  # the distilled FP32 student, a sentence-transformers directory
STATE_FILE = "student-state.safetensors"  # the trained parameters alone (a run from a pack)
CACHE_DIR = "teacher-cache"


def distill(
    config: DistillConfig,
    resume: bool = False,
    stop_at_step: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
    pack: Optional[Path] = None,
) -> Dict[str, Any]:
    """Train the pruned student towards the teacher; write corpus, cache, checkpoint and student.

    Args:
        config: the run (ignored except ``output`` when resuming: the checkpoint's config wins).
        resume: continue from ``{output}/ckpt.pt`` at its step, with its weights and optimizer.
        stop_at_step: checkpoint and stop there.
        log: called with one line per evaluation (the CLI prints; the library logs).
        pack: a directory written by ``distill.pack.write_pack``: the prepared rows and a compact teacher,
            for a machine without the corpus packages; the run then writes ``student-state.safetensors``
            (``assemble_student`` turns it into a student directory where the full teacher is).

    Returns:
        {"config", "teacher", "step", "eval_start", "eval", "history", "corpus", "student_dir", "seconds", "steps_per_s"}.
    """
    import torch

    from rasa_intent_student.factory.build import count_parameters

    log = log or logger.info
    out = Path(config.output)
    ckpt_path = out / CHECKPOINT_FILE
    checkpoint = None
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint {ckpt_path}. Run without --resume to start, or pass its --output.")
        checkpoint = load_checkpoint(ckpt_path)
        config = DistillConfig.from_dict({**checkpoint["config"], "output": str(out)})
    config.check()
    if stop_at_step is not None and stop_at_step < 1:
        raise StudentError(f"stop_at_step={stop_at_step} (--stop-at-step) must be >= 1 (an optimizer step), e.g. 2000.")
    for name, held in (("route_weight", "route examples"), ("memory_weight", "memory pairs")):
        if pack is not None and getattr(config, name) > 0:  # refused before the teacher's targets are computed
            raise StudentError(f"{name}={getattr(config, name)} is not available in a pack run (the pack holds no {held}); "
                               f"run it from the corpus, or set --{name.replace('_', '-')} 0.")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)

    if pack is not None:
        from rasa_intent_student.factory.distill.pack import load_pack

        teacher, data, ids, manifest = load_pack(Path(pack))
    else:
        from rasa_intent_student.factory.teacher import load_teacher

        data = build_training_set(config.corpus)
        manifest = data.manifest(config.corpus)
        teacher = load_teacher(config.teacher, out)
        ids = tokenize(teacher.tokenizer_path, data.texts, teacher.prefix, config.max_seq_length)
    save_corpus(data.rows, out / CORPUS_FILE)
    (out / CORPUS_MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    langs = [row.lang for row in data.rows]
    pad_id = int(teacher.model.config.pad_token_id or 0)  # any id: padded positions are masked
    cache = teacher_cache_path(Path(config.teacher_cache or out / CACHE_DIR), teacher.source, teacher.prefix, teacher.pooling, config.max_seq_length, manifest["sha256"])
    teacher.model.to(resolve_device(config.device))
    layers = int(teacher.model.config.num_hidden_layers)
    if config.middle_weight > 0 and config.middle_layer >= layers:
        raise StudentError(f"middle_layer={config.middle_layer} is not a layer of the {layers}-layer teacher; "
                           f"use 0 to {layers - 1}, e.g. {layers - 2}.")
    # Every per-token target the run uses, filled by one teacher pass where not cached.
    wanted = {"token": (config.token_weight > 0, token_capture), "relation": (config.relation_weight > 0, qkv_capture),
              "middle": (config.middle_weight > 0, partial(layer_capture, layer=config.middle_layer))}
    names = [name for name, (used, _) in wanted.items() if used]
    targets, found = teacher_targets(teacher.model, ids, pad_id, teacher.pooling, cache, [wanted[name][1](cache) for name in names])
    per_token = dict(zip(names, found))
    token_states, qkv, middle_states = per_token.get("token"), per_token.get("relation"), per_token.get("middle")
    tokenize_texts = partial(tokenize, teacher.tokenizer_path, prefix=teacher.prefix, max_seq_length=config.max_seq_length)
    routes = None
    if config.route_weight > 0:
        routes = route_training_set(config.corpus.route_data_dir, config.corpus.languages, tokenize_texts, config.route_batch_size)
    memories = None
    if config.memory_weight > 0:
        memories = memory_training_set(config.corpus.languages, tokenize_texts, evaluation_texts(config.corpus))
    teacher_size = {"teacher_layers": int(teacher.model.config.num_hidden_layers), "teacher_parameters": count_parameters(teacher.model)}
    student = make_student(teacher.model, config.layers, frequent_tokens(ids, config.embedding_min_count) if config.embedding_lr > 0 else ())
    first_stage = None
    if config.init_from:
        earlier = load_checkpoint(config.init_from)
        first_stage = {"steps": earlier["step"], "config": earlier["config"]}
        # Folded on --resume too: this run's own delta (in its checkpoint) trains on top of the earlier one.
        layers_state = fold_earlier_delta(student, earlier["model"])
        if checkpoint is None:
            student.load_state_dict(layers_state, strict=False)
            log(f"student initialized from {config.init_from} (step {earlier['step']})")
    teacher.model = None  # the 12-layer teacher is no longer needed
    run = train(student, ids, langs, targets, data.source_index, data.translation_rows(config.xling_sources), config,
                pad_id, teacher.pooling, ckpt_path, checkpoint, stop_at_step, log, token_states, qkv, routes, memories, middle_states)
    config, history = run["config"], run["history"]
    result = {"config": asdict(config), "teacher": teacher.source, **teacher_size, "step": run["step"],
              "eval_start": run["eval_start"], "eval": history[-1] if history else run["eval_start"],
              "seconds": run["seconds"], "steps_per_s": run["steps_per_s"], "first_stage": first_stage}
    record = distill_record(result, manifest)
    if pack is not None:
        from safetensors.torch import save_file

        from rasa_intent_student.factory.distill.pack import tokenizer_state

        save_file(tokenizer_state(trainable_state(student), pack), str(out / STATE_FILE))
        student_dir = out / STATE_FILE
    else:
        student_dir = save_student(student.cpu(), teacher, out / STUDENT_DIR, record)
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    result["student_dir"] = str(student_dir)
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return {**result, "history": history, "corpus": manifest}


def distill_record(result: Dict[str, Any], manifest: Dict[str, Any]) -> Dict[str, Any]:
    """What ``build`` copies into a distilled student's manifest and card (``student-st/distill.json``)."""
    keys = ("texts", "by_source", "parallel_pairs", "sha256", "counts")
    return {
        "distilled_from": result["teacher"], "layers": list(result["config"]["layers"]), "config": result["config"],
        "steps": result["step"], "seconds": result["seconds"], "steps_per_s": result["steps_per_s"],
        "teacher_layers": result.get("teacher_layers"), "teacher_parameters": result.get("teacher_parameters"),
        "eval_start": result["eval_start"], "eval": result["eval"], "corpus": {k: manifest[k] for k in keys if k in manifest},
        "first_stage": result.get("first_stage"),
    }


def save_student(student: Any, teacher: Any, directory: Path, record: Dict[str, Any]) -> Path:
    """The distilled FP32 student as a sentence-transformers directory (a ``build --teacher`` source)."""
    from rasa_intent_student.factory.stdir import write_hf_tokenizer_config, write_st_metadata

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    merge_delta(student).save_pretrained(str(directory))
    shutil.copyfile(teacher.tokenizer_path, directory / "tokenizer.json")
    write_hf_tokenizer_config(directory)
    write_st_metadata(directory, dim=student.config.hidden_size, prefix=teacher.prefix, pooling=teacher.pooling)
    (directory / DISTILL_RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return directory


def assemble_student(run_dir: Path, teacher_name: Optional[str] = None) -> Path:
    """``{run_dir}/student-st`` from a pack run's ``student-state.safetensors`` and the full teacher here."""
    from safetensors.torch import load_file

    from rasa_intent_student.factory.teacher import load_teacher

    run_dir = Path(run_dir)
    result = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    config = DistillConfig.from_dict({**result["config"], "output": str(run_dir)})
    teacher = load_teacher(teacher_name or config.teacher, run_dir)
    state = load_file(str(run_dir / STATE_FILE))
    student = make_student(teacher.model, config.layers, delta_tokens(state))
    missing = student.load_state_dict(state, strict=False)
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    if trainable & set(missing.missing_keys) or missing.unexpected_keys:
        raise StudentError(f"{run_dir / STATE_FILE} does not fit the student: missing {sorted(trainable & set(missing.missing_keys))[:5]}, "
                         f"unexpected {missing.unexpected_keys[:5]}.")
    manifest = json.loads((run_dir / CORPUS_MANIFEST_FILE).read_text(encoding="utf-8"))
    record = distill_record(result, manifest)
    return save_student(student, teacher, run_dir / STUDENT_DIR, record)
