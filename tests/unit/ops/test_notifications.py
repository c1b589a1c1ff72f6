from stethoscope.ops.notifications import ErrorNotifier


class Notifier:
    url = "http://chat.invalid/hook"

    def __init__(self):
        self.sent = []

    def notify(self, texts):
        self.sent.extend(texts)
        return "thread"


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def test_one_message_per_kind_and_interval_the_rest_counted():
    notifier, clock = Notifier(), Clock()
    errors = ErrorNotifier(notifier, interval_s=600, monotonic=clock)

    assert errors.report(KeyError("k"), "a.route", "GET '/a'", "r1") == "thread"
    assert errors.report(KeyError("k"), "a.route", "GET '/a'", "r2") is None
    assert errors.report(KeyError("k"), "a.route", "GET '/a'", "r3") is None
    # Another type, or another route: another kind.
    assert errors.report(ValueError(), "a.route", "GET '/a'", "r4") == "thread"
    assert errors.report(KeyError("k"), "b.route", "GET '/b'", "r5") == "thread"
    clock.now += 600
    assert errors.report(KeyError("k"), "a.route", "GET '/a'", "r6") == "thread"

    assert len(notifier.sent) == 4
    assert "KeyError" in notifier.sent[0] and "r1" in notifier.sent[0]
    assert notifier.sent[3].endswith("2 more since the last message")
    assert errors.counts() == {("sent",): 4, ("suppressed",): 2}


def test_nothing_without_a_webhook():
    notifier = Notifier()
    notifier.url = None
    errors = ErrorNotifier(notifier, interval_s=600)

    assert errors.report(KeyError(), "a.route", "GET '/a'", "r1") is None
    assert errors.counts() == {("sent",): 0, ("suppressed",): 0}
