"""A transaction participant that makes commits fail on demand."""

from pyramid.events import NewRequest
from transaction.interfaces import IDataManager, TransientError
from zope.interface import implementer


@implementer(IDataManager)
class FailingVote:
    """Votes no (a TransientError, as a serialisation failure would) N times.

    Joined to every request's transaction, it makes the whole two-phase
    commit fail after the view has done its work, as a real database commit
    failure would; pyramid_tm and pyramid_retry see the same error.
    """

    def __init__(self, failures: int):
        self.remaining = failures
        self.votes = 0
        self.transaction_manager = None

    def join(self, event: NewRequest) -> None:
        self.transaction_manager = event.request.tm
        event.request.tm.get().join(self)

    def tpc_vote(self, transaction):
        self.votes += 1
        if self.remaining > 0:
            self.remaining -= 1
            raise TransientError("injected commit failure")

    def sortKey(self):
        # After zope.sqlalchemy's data manager, so the database has voted yes.
        return "~failing-vote"

    def abort(self, transaction):
        pass

    def tpc_begin(self, transaction):
        pass

    def commit(self, transaction):
        pass

    def tpc_finish(self, transaction):
        pass

    def tpc_abort(self, transaction):
        pass
