"""REDIS_URL and REALTIME_KEY_PREFIX, read without any server: which broker, what names, what errors,
what a log may show of the URL, and the process's broker, hub and presence changing together."""

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, override_settings
from redis.cluster import ClusterNode

from realtime import runtime
from realtime.fanout.brokers import BrokerUnavailable, broker_for, get_broker
from realtime.fanout.brokers.base import Names
from realtime.fanout.brokers.urls import mask_password, parse_cluster_url, parse_sentinel_url
from realtime.fanout.hub import get_hub
from realtime.presence import get_presence
from realtime.testing import free_port


class BrokerChoiceTests(SimpleTestCase):
    def test_each_form_of_redis_url_gets_its_broker(self):
        for url, kind in (("", "in-process"), ("redis://127.0.0.1:6379/0", "redis"), ("rediss://h:6380/1", "redis"),
                          ("redis+sentinel://127.0.0.1:26379/primary/0", "redis-sentinel"),
                          ("redis+cluster://127.0.0.1:7000/", "redis-cluster")):
            with self.subTest(url=url):
                self.assertEqual(broker_for(url).kind, kind)  # made without connecting: no server here

    def test_an_unknown_scheme_says_which_ones_there_are(self):
        with self.assertRaises(ImproperlyConfigured) as error:
            broker_for("http://127.0.0.1:6379/0")
        self.assertIn("unknown scheme 'http'", str(error.exception))
        self.assertIn("redis+sentinel://", str(error.exception))

    def test_sentinel_urls(self):
        self.assertEqual(parse_sentinel_url("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/primary/2"),
                         ([("10.0.0.1", 26379), ("10.0.0.2", 26380)], "primary", {"db": 2}))
        self.assertEqual(parse_sentinel_url("rediss+sentinel://:s%40cret@h1,[::1]:26380/primary"),
                         ([("h1", 26379), ("::1", 26380)], "primary",
                          {"db": 0, "username": None, "password": "s@cret", "ssl": True}))
        for bad in ("redis+sentinel://h1:26379/", "redis+sentinel://h1:26379/a/0/extra"):
            with self.subTest(url=bad), self.assertRaises(ImproperlyConfigured) as error:
                parse_sentinel_url(bad)
            self.assertIn("<service>/<db>", str(error.exception))

    def test_cluster_urls(self):
        nodes, options = parse_cluster_url("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/")
        self.assertEqual([(n.host, n.port) for n in nodes], [("10.0.0.1", 7000), ("10.0.0.2", 7001)])
        self.assertIsInstance(nodes[0], ClusterNode)
        self.assertEqual(options, {"username": None, "password": "pw"})
        with self.assertRaises(ImproperlyConfigured) as error:
            parse_cluster_url("redis+cluster://10.0.0.1:7000/0")  # a cluster has one database
        self.assertIn("redis+cluster://host:port,host:port/", str(error.exception))


class NamesTests(SimpleTestCase):
    def test_the_prefix_is_on_every_channel_and_key(self):
        names = Names("prod:")
        self.assertEqual(names.channel("chat:lobby"), "prod:chat:lobby")
        self.assertEqual(names.key("presence", "chat:lobby", ":ids"), "prod:presence:chat:lobby:ids")
        self.assertEqual(Names().channel("chat:lobby"), "chat:lobby")  # no prefix: the names of before

    def test_with_cluster_a_rooms_channel_and_keys_share_one_hash_tag(self):
        names = Names("prod:", hash_tag=True)
        self.assertEqual(names.channel("chat:lobby"), "prod:{chat:lobby}")
        self.assertEqual(names.key("presence", "chat:lobby", ":seq"), "prod:presence:{chat:lobby}:seq")

    def test_a_cluster_prefix_with_braces_is_refused(self):
        with self.assertRaises(ImproperlyConfigured) as error:
            broker_for("redis+cluster://127.0.0.1:7000/", prefix="{site}:")
        self.assertIn("cannot contain { or }", str(error.exception))


class PasswordTests(SimpleTestCase):
    """A REDIS_URL is shown with its password masked, in every form it takes."""

    def test_every_form_shows_the_password_masked_and_the_rest_as_is(self):
        for url, shown in (
                ("redis://:s3cret@10.0.0.1:6379/0", "redis://:***@10.0.0.1:6379/0"),
                ("rediss://app:s%40cret@h:6380/1", "rediss://app:***@h:6380/1"),
                ("redis+sentinel://:s3cret@h1:26379,[::1]:26380/primary/0",
                 "redis+sentinel://:***@h1:26379,[::1]:26380/primary/0"),
                ("redis+cluster://:pw:with@signs@h1:7000,h2:7001/", "redis+cluster://:***@h1:7000,h2:7001/"),
                ("unix://:s3cret@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
                ("redis://h:6379/0?password=s3cret&db=1", "redis://h:6379/0?password=***&db=1"),
                ("redis://h:6379/0", "redis://h:6379/0"), ("", "")):
            with self.subTest(url=url):
                self.assertEqual(mask_password(url), shown)

    def test_what_a_broker_says_of_itself_and_its_errors_never_hold_the_password(self):
        port = free_port()  # nothing listens there: publishing fails
        for url in (f"redis://:s3cret@127.0.0.1:{port}/0", f"redis+sentinel://:s3cret@127.0.0.1:{port}/primary/0",
                    f"redis+cluster://:s3cret@127.0.0.1:{port}/"):
            with self.subTest(url=url):
                broker = broker_for(url)
                self.assertNotIn("s3cret", broker.describe())
                self.assertIn("***", broker.describe())
                with self.assertRaises(BrokerUnavailable) as error:
                    broker.publish("room", "hello")
                self.assertNotIn("s3cret", str(error.exception))
        for bad in ("redis+sentinel://:s3cret@h1:26379/", "redis+cluster://:s3cret@h1:7000/0", "http://:s3cret@h/"):
            with self.subTest(url=bad), self.assertRaises(ImproperlyConfigured) as error:
                broker_for(bad)
            self.assertNotIn("s3cret", str(error.exception))


class ProcessPartsTests(SimpleTestCase):
    """The broker, hub and presence of a process are made from the settings and change together."""

    def test_a_new_redis_url_gives_a_new_broker_hub_and_presence_together(self):
        with override_settings(REDIS_URL=""):
            broker, hub, presence = get_broker(), get_hub(), get_presence()
            self.assertEqual((broker.kind, get_broker(), get_hub(), get_presence()), ("in-process", broker, hub, presence))
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REALTIME_KEY_PREFIX="blue:"):
            hub, presence = get_hub(), get_presence()  # the hub and presence first: they bring the broker
            broker = get_broker()
            self.assertEqual(broker.kind, "redis")
            self.assertIs(hub.broker, broker)
            self.assertIs(presence.store.client, broker.client)  # the lists are where the broker reaches
            self.assertEqual(presence.store.names.prefix, "blue:")
        self.assertIsNot(get_hub(), hub)  # the settings changed back: all three again
        self.assertIs(get_hub().broker, get_broker())
        self.assertIsNot(get_presence(), presence)

    def test_a_reset_stops_what_the_old_parts_run(self):
        with override_settings(REDIS_URL=""):
            presence = get_presence()
            presence.join("room", "a", {"name": "ann"})  # starts its flusher
            loop = presence._loops[0]
            runtime.reset()
            self.assertEqual(loop.state, "stopped")
