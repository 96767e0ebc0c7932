"""One status line while the benchmark runs: step n of N, elapsed time, what is happening now."""

import asyncio
import sys
import time

LOG_EVERY = 5.0


class Progress:
    def __init__(self, total_steps, stream=sys.stderr):
        self.total = total_steps
        self.step_number = 0
        self.step_label = ""
        self.phase_text = ""
        self.started = time.monotonic()
        self.stream = stream
        self.live = stream.isatty()
        self._ticker = None
        self._printed = 0.0

    def step(self, label):
        self.step_number += 1
        self.step_label = label
        self.phase("starting")

    def phase(self, text):
        """What the current step does now. Off a terminal (CI, a log file) a line is printed
        when a step starts and then at most every LOG_EVERY seconds."""
        self.phase_text = text
        if self.live:
            self.render()
        elif text == "starting" or time.monotonic() - self._printed >= LOG_EVERY:
            self._printed = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def line(self):
        elapsed = int(time.monotonic() - self.started)
        width = 20
        filled = width * max(0, self.step_number - 1) // max(1, self.total)
        bar = "#" * filled + "-" * (width - filled)
        return (f"[{bar}] {self.step_number}/{self.total} {elapsed // 60:d}:{elapsed % 60:02d} "
                f"{self.step_label}: {self.phase_text}")

    def render(self):
        columns = 120
        self.stream.write("\r" + self.line()[:columns].ljust(columns))
        self.stream.flush()

    async def _tick(self):
        while True:
            await asyncio.sleep(0.5)
            self.render()

    def start_ticking(self):
        """Redraw twice a second on a terminal, so the clock moves during long phases."""
        if self.live and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def done(self):
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
