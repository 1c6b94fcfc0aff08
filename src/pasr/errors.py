"""The one exception type users see: it carries a message that says what was wrong and where.

The CLI prints it without a traceback; library users can catch it.
"""


class PasrError(ValueError):
    """Bad input or configuration, with a message naming the file, line or field and what to do."""
