"""Answer scoring (placeholder seed: the scoring helper replaces this module)."""
