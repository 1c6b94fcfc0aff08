"""pasr: ProActive Self-Refinement (arXiv 2508.12903) as software.

Train a language model with GRPO to refine its reasoning while it generates
(``<think> ... <refine> ... </refine> ... </think><answer> ... </answer>``),
evaluate it against prompted and trained baselines, and inspect how it refines.
"""

__version__ = "0.1.0"
