"""Trained baselines from the PASR paper, both supervised fine-tuning on self-generated data via ``run_sft``.

- ``ift``: PASR(+IFT): filter a PASR rollout log into a chat SFT set (``pasr ift-data``), then ``pasr sft``.
- ``star``: STaR (Zelikman et al., 2022): few-shot rationales, rationalisation with the answer as hint,
  K iterations of fine-tuning the base model (``pasr star``).
- ``command``: the two commands.
"""
