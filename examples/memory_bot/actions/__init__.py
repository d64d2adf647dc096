"""Custom actions of memory_bot; `rasa run actions --actions actions` loads every module here.

Inside the action server, importing this package also protects it (see server_guard.py): calls
need $MEMORY_BOT_ACTION_TOKEN, and the server refuses to start without it.
"""
from . import server_guard

server_guard.install()
