"""One run's lifecycle: build it, resume it, record how it ended, report it.

``training`` (``train.py``) and ``finetuning`` (``finetune.py``) build and fit a run;
``resume``, ``checkpoint_match`` and ``init_from`` say what it starts from; ``summary``,
``end_report`` and ``errors`` record how it ended; ``data_roots``, ``config_resolvers`` and
``known_noise`` are the configuration and console around it.
"""
