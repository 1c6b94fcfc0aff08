"""Trained baselines from the PASR paper, one module each, run by `pasr baseline NAME` (:mod:`.registry`).

- ``star``: STaR (Zelikman et al., 2022): few-shot rationales, rationalisation with the answer as hint,
  K iterations of fine-tuning the base model.
- ``ift``: PASR(+IFT): the good refining rollouts of a PASR run (filters: :mod:`.ift`, also ``pasr ift-data``),
  then supervised fine-tuning on them (:mod:`.ift_run`).
- ``ptr``: PTR (Progressive Thought Refinement, 2024): the model's own weaker -> better answers as refinement
  examples under a "think further" instruction, fine-tuning on the refined answer, evaluation over rounds.
- ``common``: what the baselines' runs share (questions, the run log, the run's start and scorer).
- ``registry``: name -> module, config, CPU recipe, description, run function; how to add a baseline.
- ``command``: ``pasr baseline`` and the aliases ``pasr star`` / ``pasr ift-data``.
"""
