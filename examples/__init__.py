"""Example Rasa assistants that use rasa-intent-student (not part of the installed package)."""
