"""Subcommands of the ``rasa-intent-student`` console script (see ``cli.py``)."""
