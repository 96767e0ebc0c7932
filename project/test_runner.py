"""Django's test runner, plus closing lines that CI tools read: one per failed test with its
error's last line, then 'N passed, N failed, N skipped'."""

import re

from django.test.runner import DiscoverRunner

# "module.Error: message", the line a traceback ends its story with (before any driver stacktrace).
ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*: ")


def error_line(traceback_text):
    lines = [line for line in traceback_text.splitlines() if ERROR_LINE.match(line)]
    return (lines[-1] if lines else traceback_text.strip().splitlines()[-1])[:300]


class SummaryRunner(DiscoverRunner):
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
