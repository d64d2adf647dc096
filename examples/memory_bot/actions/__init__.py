"""Custom actions of memory_bot; `rasa run actions --actions actions` loads every module here."""
