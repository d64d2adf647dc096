"""Custom action of router_minimal; `rasa run actions --actions actions` loads it."""
