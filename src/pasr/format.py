"""The PASR response grammar. (Placeholder seed: the format helper replaces this module.)"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_answer(text: str) -> str | None:
    """Content of the last ``<answer>...</answer>`` in ``text`` (stripped), or None when absent."""
    found = _ANSWER.findall(text or "")
    return found[-1].strip() if found else None
