"""Secrets stay out of logs and error texts: a worker on a password-protected Redis (`requirepass`)
through an outage, and `manage.py chat_say` failing with the password in REDIS_URL."""

import secrets

import redis
from django.core.management import CommandError, call_command
from django.test import override_settings

from realtime.testing import LiveWebSocketTestCase, RedisServer, WorkerProcess, wait_until
from tests.history import RoomClientsMixin, create_rooms

PASSWORD = f"pw-{secrets.token_hex(8)}"


class ProtectedRedis(RedisServer):
    """A throwaway redis-server that wants PASSWORD."""

    name = "redis-protected"

    def command(self):
        return super().command() + ["--requirepass", PASSWORD]

    @property
    def url(self):
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def ready(self):
        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False


class PasswordNeverShownTests(RoomClientsMixin, LiveWebSocketTestCase):
    @classmethod
    def setUpClass(cls):
        cls.protected = ProtectedRedis().start()
        cls.addClassCleanup(cls.protected.stop)
        super().setUpClass()

    @classmethod
    def start_worker(cls, **env):
        return WorkerProcess(redis_url=cls.protected.url, env={**cls.worker_env, **env}).start()

    def health(self):
        status, _, body = self.worker.http_get("/healthz")
        return status, body

    def chat_say_fails(self, url):
        """The text `manage.py chat_say` prints when it cannot deliver through REDIS_URL `url`."""
        with override_settings(REDIS_URL=url), self.assertRaises(CommandError) as error:
            call_command("chat_say", "secret", "from the command line")
        return str(error.exception)

    def test_no_log_line_healthz_or_error_text_holds_the_password(self):
        create_rooms("secret")
        ann, bob = self.join("secret", name="ann"), self.join("secret", name="bob")
        ann.send_json("message", {"text": "hello"})
        self.assertEqual(bob.receive_event("message")["text"], "hello")  # the worker logged in to Redis
        self.assertNotIn(PASSWORD, self.health()[1])

        self.protected.stop()
        wait_until(lambda: self.health()[0] == 503, message="healthz to report the broker down")
        self.assertNotIn(PASSWORD, self.health()[1])
        ann.send_json("message", {"text": "during"})
        self.assertEqual(ann.receive_event("error")["code"], "delivery_degraded")
        said = self.chat_say_fails(self.protected.url)
        self.assertIn("but not delivered live: Redis at redis://:***@127.0.0.1:", said)
        self.assertNotIn(PASSWORD, said)

        self.protected.start()
        wait_until(lambda: self.health()[0] == 200, timeout=15, message="the worker to reconnect")
        wrong = f"wrong-{PASSWORD}"
        said = self.chat_say_fails(self.protected.url.replace(PASSWORD, wrong))
        self.assertIn("invalid username-password pair", said)
        self.assertNotIn(wrong, said)

        log = self.worker.log()
        self.assertIn(f"Redis PubSub at redis://:***@127.0.0.1:{self.protected.port}/0", log)  # the boot line
        self.assertIn("Redis unavailable (", log)
        self.assertIn("reconnected to Redis", log)
        self.assertNotIn(PASSWORD, log)
