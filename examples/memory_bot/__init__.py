"""memory_bot: a multilingual assistant that acts, remembers and recalls per user."""
