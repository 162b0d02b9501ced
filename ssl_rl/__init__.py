"""ssl_rl: spatiotemporal self-supervision with a reinforcement-learned permutation policy."""

__version__ = "0.1.0"
