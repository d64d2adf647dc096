"""The memory bot's lock store gives simultaneous messages on two replicas distinct tickets (real Redis).

Two stores on one Redis stand for two Rasa replicas. A barrier holds each store right after it has read
the conversation's lock, so both read before either writes whenever nothing stops them: that is the
interleaving in which Rasa's own RedisLockStore hands out the same ticket twice (RasaHQ/rasa#9213).
"""
import asyncio
import threading

import pytest

pytest.importorskip("rasa")
from rasa.core.lock_store import RedisLockStore  # noqa: E402

from examples.memory_bot.atomic_lock_store import AtomicRedisLockStore  # noqa: E402
from examples.memory_bot.local_services import LocalRedis  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_server():
    with LocalRedis() as server:
        yield server


def racing(base: type, barrier: threading.Barrier) -> type:
    class Racing(base):
        def get_or_create_lock(self, conversation_id):
            lock = super().get_or_create_lock(conversation_id)
            try:
                barrier.wait(timeout=1.0)  # the other replica reads now, if it can
            except threading.BrokenBarrierError:
                pass  # it could not: it waits for the mutex
            return lock

    return Racing


def tickets_of_a_race(base: type, server: LocalRedis, conversation: str) -> list:
    barrier = threading.Barrier(2)
    replicas = [racing(base, barrier)(host=server.host, port=server.port, password=server.password, db=1)
                for _ in range(2)]
    tickets = [None, None]

    def take(i: int) -> None:
        tickets[i] = replicas[i].issue_ticket(conversation)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return tickets


def test_rasa_redis_lock_store_gives_both_the_same_ticket(redis_server):
    """The defect the bot's store exists for (if Rasa fixes it, this test says so)."""
    assert tickets_of_a_race(RedisLockStore, redis_server, "race-plain") == [0, 0]


def test_atomic_lock_store_gives_distinct_tickets(redis_server):
    assert sorted(tickets_of_a_race(AtomicRedisLockStore, redis_server, "race-atomic")) == [0, 1]


def test_atomic_lock_store_serves_one_replica_at_a_time(redis_server):
    """The second replica's message waits until the first one's lock is released, then is served."""
    first, second = (AtomicRedisLockStore(host=redis_server.host, port=redis_server.port,
                                          password=redis_server.password, db=1) for _ in range(2))

    async def scenario() -> None:
        async with first.lock("user-1"):
            ticket = second.issue_ticket("user-1")
            assert second.get_lock("user-1").is_locked(ticket)
        assert not second.get_lock("user-1").is_locked(ticket)
        second.cleanup("user-1", ticket)
        assert second.get_lock("user-1") is None  # nobody waiting: the lock is deleted

    asyncio.run(scenario())
