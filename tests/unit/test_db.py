"""Database helpers that need no database."""

import threading

from stethoscope.db import FairLock
from tests.support.waiting import wait_for


def test_fair_lock_is_granted_in_the_order_asked():
    lock = FairLock()
    order = []

    def take(n):
        with lock:
            order.append(n)

    threads = []
    with lock:
        for n in range(5):
            thread = threading.Thread(target=take, args=(n,))
            thread.start()
            threads.append(thread)
            # The next one asks only after this one waits in line.
            wait_for(lambda n=n: len(lock._queue) == n + 1, f"waiter {n}")
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_a_releasing_holder_asking_again_waits_behind_the_queue():
    lock = FairLock()
    order = []
    waiting = threading.Thread(target=lambda: _take(lock, order, "waiter"))
    with lock:
        waiting.start()
        wait_for(lambda: len(lock._queue) == 1, "the waiter to queue")
    # Released with someone in line: asking again goes behind it.
    _take(lock, order, "again")
    waiting.join(10)
    assert order == ["waiter", "again"]


def _take(lock, order, name):
    with lock:
        order.append(name)
