"""The parts of `make scale-check` (../scale_check.py): the plan of messages, the stack of servers, the load,
the checks and the report."""
