"""Evaluation and benchmarks (``rasa-intent-student evaluate`` / ``bench``); imports nothing heavy here.

- ``metrics``: accuracy, per-class F1, macro-F1, confusion matrix (numpy).
- ``intent``: ``IntentEvaluator`` and ``evaluate_router`` (student embeddings + ``router.LogisticRouter``).
- ``fidelity``: ``TeacherFidelityEvaluator`` (MSE and cosine to the teacher).
- ``benchmark``: latency percentiles, throughput, size and peak memory of an encoder, per subprocess.
- ``rasa_bench``: train and parse with our Rasa pipeline and with DIET.
- ``quality`` / ``hassil_corpus``: few-shot intent accuracy on Home Assistant's expanded templates.
- ``suite``: the whole ``bench`` run; ``tables`` / ``plots``: its text and PNG output.
"""
