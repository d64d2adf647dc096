"""A Redis lock store whose ticket updates are atomic across Rasa replicas.

Rasa 3.6's ``RedisLockStore`` issues a ticket by reading the conversation's lock, adding a
ticket and writing it back. Two replicas that receive a user's messages at the same moment
can both read the lock before either writes, both get ticket 0 and handle the two messages
at once: the SQL tracker store then keeps only one of them (RasaHQ/rasa#9213; the fix,
``ConcurrentRedisLockStore``, is not in Rasa Open Source 3.6). Here every read-modify-write
of a lock runs under a short Redis mutex (``SET NX`` with expiry, released by a script), so
each message gets its own ticket and one replica at a time handles a conversation.

endpoints.yml::

    lock_store:
      type: atomic_lock_store.AtomicRedisLockStore
      url: ...   # the same keys as Rasa's `type: redis`
"""
from typing import Any, Optional, Text

from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

# A read-modify-write takes milliseconds; a replica that dies holding the mutex frees it after this.
MUTEX_EXPIRY_S = 5.0
MUTEX_WAIT_S = 10.0


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` with ticket issue, expiry, release and deletion under a per-conversation mutex."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # built by Rasa from endpoints.yml
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _mutex(self, conversation_id: Text) -> Any:
        return self.red.lock(f"{self.key_prefix}{conversation_id}:mutex", timeout=MUTEX_EXPIRY_S,
                             blocking_timeout=MUTEX_WAIT_S)

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        with self._mutex(conversation_id):
            return super().issue_ticket(conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: Text) -> None:
        with self._mutex(conversation_id):
            super().update_lock(conversation_id)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        with self._mutex(conversation_id):
            super().finish_serving(conversation_id, ticket_number)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        # One critical section: a ticket issued between the release and the deletion must not be deleted.
        with self._mutex(conversation_id):
            RedisLockStore.finish_serving(self, conversation_id, ticket_number)
            if not self.is_someone_waiting(conversation_id):
                self.delete_lock(conversation_id)
