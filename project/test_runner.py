"""Django's test runner, plus closing lines that CI tools read: one per failed test with its
error's last line, then 'N passed, N failed, N skipped'."""

import os
import re

from django.test.runner import DiscoverRunner

# "module.Error: message", the line a traceback ends its story with (before any driver stacktrace).
ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")


def error_line(traceback_text):
    lines = [line for line in traceback_text.splitlines() if ERROR_LINE.match(line)]
    return (lines[-1] if lines else traceback_text.strip().splitlines()[-1])[:300]


# Every client of the suite comes from 127.0.0.1, one guest address: its posting and join budgets
# would be shared by every test that chats or joins. The servers tests start read these from the
# environment; the tests of budgets (tests/test_budgets.py) give their workers budgets of their own.
NO_CLIENT_BUDGETS = {"CHAT_POST_RATE": "0", "CHAT_GUEST_POST_RATE": "0",
                     "WEBSOCKET_JOIN_RATE": "0", "WEBSOCKET_GUEST_JOIN_RATE": "0"}


class SummaryRunner(DiscoverRunner):
    def setup_test_environment(self, **kwargs):
        for name, value in NO_CLIENT_BUDGETS.items():
            os.environ.setdefault(name, value)
        super().setup_test_environment(**kwargs)

    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        for kind, problems in (("FAIL", result.failures), ("ERROR", result.errors)):
            for test, traceback_text in problems:
                print(f"{kind} {test.id()}: {error_line(traceback_text)}", flush=True)
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        passed = result.testsRun - failed - skipped - len(result.expectedFailures)
        print(f"\n{passed} passed, {failed} failed, {skipped} skipped", flush=True)
        return result
