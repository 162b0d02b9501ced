"""ssl_rl: spatiotemporal self-supervision with a reinforcement-learned permutation policy."""

from ssl_rl.run.config_resolvers import register as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()
