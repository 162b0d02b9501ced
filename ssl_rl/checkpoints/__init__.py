"""Checkpoint files: weights-only loading, atomic saving, the shareable trunk and its export."""
