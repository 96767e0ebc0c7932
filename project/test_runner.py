"""Django's test runner, plus one closing line that CI tools read: 'N passed, N failed, N skipped'."""

from django.test.runner import DiscoverRunner


class SummaryRunner(DiscoverRunner):
    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        passed = result.testsRun - failed - skipped - len(result.expectedFailures)
        print(f"\n{passed} passed, {failed} failed, {skipped} skipped", flush=True)
        return result
