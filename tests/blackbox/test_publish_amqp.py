"""The publish handler's AMQP target (Mozilla Pulse is RabbitMQ) against a real, private
rabbitmq-server: a consumer bound to the exchange receives every event once, with its
routing key, as a persistent JSON message, also when the broker is restarted (cleanly, and
killed) mid-run; skipped routing keys never arrive; the password never shows in logs, job
records, events or the process list."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

import pika

import harness
import rabbit

EXCHANGE = "exchange/sluice/test"


class Consumer:
    """A durable queue bound to the exchange with "#" (every routing key), read with
    basic_get; reconnects after a broker restart."""

    def __init__(self, broker, queue="everything"):
        self.broker = broker
        self.queue = queue
        self.conn = None
        self.messages = []  # (routing_key, properties, body)
        self.redelivered = 0  # taken before, the take lost with a killed broker: sent again
        self._open()
        self._declare()

    def _declare(self):
        self.ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        self.ch.queue_declare(self.queue, durable=True)
        self.ch.queue_bind(self.queue, EXCHANGE, "#")

    def reopen(self):
        """After a broker restart: declared again, as a consumer does on reconnecting (a
        broker killed before it wrote a new queue's binding to disk has lost it, and would
        drop every message published after its restart as unroutable)."""
        self.close()
        self._open()
        self._declare()

    def _open(self):
        params = pika.URLParameters("amqp://guest:guest@127.0.0.1:%d/%%2F" % self.broker.port)
        self.conn = pika.BlockingConnection(params)
        self.ch = self.conn.channel()

    def drain(self):
        """Moves what the queue holds into self.messages; returns how many came."""
        n = 0
        for attempt in range(2):
            try:
                while True:
                    method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
                    if method is None:
                        return n
                    self.messages.append((method.routing_key, props, body))
                    self.redelivered += method.redelivered
                    n += 1
            except (pika.exceptions.AMQPError, OSError):
                if attempt:
                    raise
                self._open()
        return n

    def close(self):
        try:
            self.conn.close()
        except Exception:  # the broker may be gone already
            pass


class AmqpPublishTest(unittest.TestCase):
    # The queues the broker restarts are read through. A queue declared moments before the
    # broker is killed can be lost with everything in it (its record was not on disk yet:
    # under load, thousands of confirmed messages went with it once), so they are declared
    # when the broker starts, long before the restart tests, and emptied when one begins.
    RESTART_QUEUES = ["restart%d" % signal.SIGKILL, "restart%d" % signal.SIGTERM]
    QUEUE_AGE_S = 10

    @classmethod
    def setUpClass(cls):
        cls.broker = rabbit.Broker(tls=True)
        try:
            cls.broker.start()
            for queue in cls.RESTART_QUEUES:
                Consumer(cls.broker, queue).close()
            cls.declared_at = time.monotonic()
        except BaseException:
            cls.broker.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def setUp(self):
        self.box = harness.Sandbox(api=True)
        self.consumer = None

    def tearDown(self):
        if self.consumer:
            self.consumer.close()
        self.box.close()

    def start(self, *extra, url=None, env=None, retry_delay=0.2):
        self.box.start("--kind", "publish", "--publish-url", url or self.broker.url,
                       "--publish-exchange", EXCHANGE, "--max-attempts", "200",
                       "--retry-delay", str(retry_delay),
                       "--retry-max-delay", str(max(retry_delay, 0.5)),
                       "--publish-timeout", "5", *extra, env=env)
        self.box.wait_for_api()

    def states(self):
        return dict(self.box.query("SELECT name, state FROM jobs"))

    def wait_all_ended(self, count, timeout=120):
        self.box.wait_for(lambda: len(self.states()) == count and
                          all(s in ("succeeded", "failed") for s in self.states().values()),
                          timeout, "every job to end")

    def drop_events(self, files, per_file, skip_every=0, pause=0, first=0):
        """Files of events; every skip_every-th event gets a routing key to skip. Returns the
        ids expected to arrive, with their routing keys."""
        expected = {}
        for f in range(first, first + files):
            events = []
            for i in range(per_file):
                eid = "%d-%d" % (f, i)
                if skip_every and i % skip_every == 0:
                    key = "build.linux.%d.step.started" % i  # pulse_publisher's skip pattern
                else:
                    key = "build.linux%d.finished" % f
                    expected[eid] = key
                # Buildbot's events name their key "event"; others "routing_key".
                events.append({"event" if i % 2 else "routing_key": key, "id": eid,
                               "payload": {"n": i, "text": "é\u2603"}})
            self.box.drop("events%03d.json" % f, events)
            time.sleep(pause)
        return expected

    def check_received(self, expected, max_duplicates=0):
        """Every expected event arrived with its key; none else; at most max_duplicates
        messages published twice (same message_id)."""
        ids = {}
        for key, props, body in self.consumer.messages:
            event = json.loads(body)
            self.assertEqual(props.delivery_mode, 2)  # persistent
            self.assertEqual(props.content_type, "application/json")
            self.assertEqual(expected.get(event["id"]), key, event)
            ids.setdefault(event["id"], set()).add(props.message_id)
        self.assertEqual(sorted(ids), sorted(expected))
        # A copy carries the same message_id as the original: a consumer can drop it.
        self.assertTrue(all(len(m) == 1 for m in ids.values()))
        # Copies the broker itself redelivers (it lost a consumer's ack in a crash) are the
        # consumer's side of at-least-once, not this publisher's.
        duplicates = len(self.consumer.messages) - len(ids) - self.consumer.redelivered
        self.assertLessEqual(duplicates, max_duplicates)
        return duplicates

    def test_every_event_once_with_its_routing_key(self):
        self.consumer = Consumer(self.broker, "once")
        self.start("--publish-skip", r"^build\.\S+\.\d+\.step\.")
        expected = self.drop_events(6, 130, skip_every=7)
        self.box.drop("single.json", {"routing_key": "one.event", "id": "single"})
        expected["single"] = "one.event"
        self.wait_all_ended(7)
        self.assertEqual(set(self.states().values()), {"succeeded"})
        self.consumer.drain()
        self.check_received(expected)
        self.assertEqual(len(self.consumer.messages), len(expected))
        # Bodies are the events themselves, UTF-8 JSON.
        first = [json.loads(b) for k, p, b in self.consumer.messages if b"0-1\"" in b][0]
        self.assertEqual(first["payload"], {"n": 1, "text": "é\u2603"})
        summary = json.loads(self.box.query(
            "SELECT result FROM jobs WHERE name = 'events000.json'")[0][0])
        self.assertEqual(summary["published"], 111)
        self.assertEqual(summary["skipped"], 19)

    def restart_mid_run(self, sig):
        self.consumer = Consumer(self.broker, "restart%d" % sig)
        self.consumer.ch.queue_purge(self.consumer.queue)  # what earlier tests published
        time.sleep(max(0.0, self.declared_at + self.QUEUE_AGE_S - time.monotonic()))
        self.start("--publish-batch", "20")
        # A producer keeps dropping files before the broker goes away, while it is away, and
        # after it is back. (Each phase waits for the last: under load, timing alone did not
        # make jobs meet the broker's absence.)
        expected = {}
        broker_down, dropped_while_down, broker_up = (threading.Event() for _ in range(3))

        def produce():
            expected.update(self.drop_events(30, 150, pause=0.1))
            broker_down.wait(120)
            expected.update(self.drop_events(15, 150, first=30))
            dropped_while_down.set()
            broker_up.wait(240)
            expected.update(self.drop_events(15, 150, pause=0.1, first=45))

        producing = threading.Thread(target=produce)
        producing.start()
        try:
            # Some seconds of publishing first: the broker keeps the consumer's queue and
            # binding through a crash only once they are on its disk.
            def published_600():
                self.consumer.drain()
                return len(self.consumer.messages) > 600
            self.box.wait_for(published_600, 60, "publishing to start")
            self.consumer.close()
            self.broker.stop(sig)
            broker_down.set()
            self.assertTrue(dropped_while_down.wait(60))
            # Jobs fail on the lost connection and wait for a retry.
            self.box.wait_for(lambda: self.box.query(
                "SELECT COUNT(*) FROM jobs WHERE attempts > 1")[0][0] > 0, 60, "a failed attempt")
            self.broker.start()
            self.consumer.reopen()
        finally:
            broker_down.set()
            broker_up.set()
            producing.join()
        self.wait_all_ended(60, timeout=180)
        self.assertEqual(set(self.states().values()), {"succeeded"})
        self.consumer.drain()
        # The window a lost connection can repeat: messages the broker took but whose confirm
        # never came back (at most one batch per job in flight). Each copy keeps its
        # message_id, so consumers that dedupe by it see every event exactly once.
        self.check_received(expected, max_duplicates=5 * 20)
        retried = self.box.query("SELECT COUNT(*) FROM jobs WHERE attempts > 1")[0][0]
        self.assertGreater(retried, 0)  # the restart did cut publishing short
        print("%s: %d messages for %d events (%d redelivered by the broker), %d jobs retried" % (
            signal.Signals(sig).name, len(self.consumer.messages), len(expected),
            self.consumer.redelivered, retried))

    def test_broker_restarted_cleanly_mid_run(self):
        self.restart_mid_run(signal.SIGTERM)

    def test_broker_killed_mid_run(self):
        self.restart_mid_run(signal.SIGKILL)

    def test_password_never_shown(self):
        secret = "pa55-Wörd-never-shown"
        pw = os.path.join(self.box.dir, "pulse.pw")
        with open(pw, "w") as f:
            f.write(secret + "\n")
        os.chmod(pw, 0o600)
        self.start("--publish-token-file", pw)
        self.box.drop("a.json", [{"routing_key": "a", "id": "a"}])
        # guest's password is not this one: the job fails to log in, and says so.
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE attempts >= 2")[0][0] == 1, 60, "a retry")
        self.box.stop()
        why = self.box.query("SELECT error_message FROM jobs")[0][0]
        self.assertIn("cannot log in", why)
        self.assertIn("amqp://guest@127.0.0.1:%d" % self.broker.port, why)
        self.assertNotIn(secret, why)
        self.assertNotIn(secret, self.box.daemon_log())
        dump = subprocess.run(["sqlite3", self.box.db, ".dump"], capture_output=True).stdout
        self.assertNotIn(secret.encode(), dump)

    def test_password_in_url_hidden_from_ps_and_logs(self):
        secret = "url-secret-77"
        url = "amqp://guest:%s@127.0.0.1:%d/%%2F" % (secret, self.broker.port)
        self.start(url=url)
        with open("/proc/%d/cmdline" % self.box.proc.pid, "rb") as f:
            cmdline = f.read()
        self.assertNotIn(secret.encode(), cmdline)
        self.box.drop("b.json", [{"routing_key": "b", "id": "b"}])
        self.box.wait_for(lambda: self.box.query(
            "SELECT COUNT(*) FROM jobs WHERE attempts >= 2")[0][0] == 1, 60, "a retry")
        self.box.stop()
        self.assertNotIn(secret, self.box.daemon_log())
        dump = subprocess.run(["sqlite3", self.box.db, ".dump"], capture_output=True).stdout
        self.assertNotIn(secret.encode(), dump)

    def test_password_from_the_environment(self):
        self.consumer = Consumer(self.broker, "envpw")
        env = dict(os.environ, SLUICE_PUBLISH_TOKEN="guest")
        self.start(env=env)
        self.box.drop("c.json", [{"routing_key": "c.1", "id": "c"}])
        self.wait_all_ended(1)
        self.assertEqual(self.states(), {"c.json": "succeeded"})
        self.consumer.drain()
        self.check_received({"c": "c.1"})

    def tls_env(self, trusted):
        env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
        if trusted:
            env["SSL_CERT_FILE"] = self.broker.ca
        return env

    def test_tls_to_a_broker_whose_certificate_is_trusted(self):
        self.consumer = Consumer(self.broker, "tls")
        self.start(url=self.broker.tls_url, env=self.tls_env(True))
        self.box.drop("t.json", [{"routing_key": "tls.%d" % i, "id": str(i)} for i in range(60)])
        self.wait_all_ended(1)
        self.assertEqual(self.states(), {"t.json": "succeeded"})
        self.consumer.drain()
        self.check_received({str(i): "tls.%d" % i for i in range(60)})

    def test_tls_refuses_an_untrusted_certificate_or_another_host(self):
        cases = [(self.broker.tls_url, False),  # the test CA is not among the system's
                 (self.broker.tls_url.replace("localhost", "127.0.0.1"), True)]  # not its name
        for url, trusted in cases:
            box = harness.Sandbox(api=True)
            try:
                box.start("--kind", "publish", "--publish-url", url, "--publish-exchange",
                          EXCHANGE, "--retry-delay", "0.2", env=self.tls_env(trusted))
                box.wait_for_api()
                box.drop("u.json", [{"routing_key": "u", "id": "u"}])
                box.wait_for(lambda: box.query(
                    "SELECT COUNT(*) FROM jobs WHERE attempts >= 2")[0][0] == 1, 60, "a retry")
                why = box.query("SELECT error_message FROM jobs")[0][0]
                self.assertIn("cannot connect", why, url)
                self.assertIn("SSL", why, url)
                print(why)
            finally:
                box.close()

    def test_events_without_a_routing_key_fail_the_job_before_any_is_sent(self):
        self.consumer = Consumer(self.broker, "nokey")
        self.start()
        self.box.drop("nokey.json", [{"routing_key": "ok", "id": "1"}, {"id": "2"}])
        self.box.drop("numkey.json", [{"routing_key": 5, "id": "3"}])
        self.box.drop("long.json", [{"routing_key": "k" * 256, "id": "4"}])
        self.box.drop("notobj.json", [{"routing_key": "ok", "id": "5"}, 7])
        self.wait_all_ended(4)
        self.assertEqual(set(self.states().values()), {"failed"})
        errors = dict(self.box.query("SELECT name, error_message FROM jobs"))
        self.assertIn("event 1 has no \"routing_key\"", errors["nokey.json"])
        self.assertIn("at most 255 bytes", errors["long.json"])
        self.assertIn("event 1 is not a JSON object", errors["notobj.json"])
        time.sleep(0.5)
        self.consumer.drain()
        self.assertEqual(self.consumer.messages, [])

    def test_an_exchange_of_another_kind_is_named(self):
        conn = pika.BlockingConnection(pika.URLParameters(
            "amqp://guest:guest@127.0.0.1:%d/%%2F" % self.broker.port))
        conn.channel().exchange_declare("fanout-one", exchange_type="fanout", durable=True)
        conn.close()
        self.box.start("--kind", "publish", "--publish-url", self.broker.url,
                       "--publish-exchange", "fanout-one", "--retry-delay", "0.1")
        self.box.wait_for_api()
        self.box.drop("d.json", [{"routing_key": "d", "id": "d"}])
        self.box.wait_for(lambda: (self.box.query("SELECT error_message FROM jobs") or [[None]])[0][0],
                          60, "an error")
        why = self.box.query("SELECT error_message FROM jobs")[0][0]
        self.assertIn("cannot declare the exchange", why)
        self.assertIn("406", why)

    def test_bad_configurations_refused_at_start(self):
        cases = [
            (["--publish-url", self.broker.url], "needs --publish-exchange"),
            (["--publish-url", "http://127.0.0.1:9/x", "--publish-exchange", "e"],
             "--publish-exchange is for an amqp://"),
            (["--publish-url", "ftp://127.0.0.1/x"], "neither http(s):// nor amqp://"),
            (["--publish-url", "amqp://[::1", "--publish-exchange", "e"], "not an AMQP URL"),
        ]
        for flags, message in cases:
            r = self.box.burst("--kind", "publish", *flags)
            self.assertNotEqual(r.returncode, 0, flags)
            self.assertIn(message, r.stderr, flags)

    def test_broker_down_at_start_then_up(self):
        other = rabbit.Broker()
        try:
            # The consumer's durable queue and binding exist before Sluice's first try: a
            # message published to a topic exchange nobody is bound to is dropped by the
            # broker, so binding after the broker came back would race the next retry.
            other.start()
            Consumer(other, "late").close()
            other.stop()
            self.consumer = None
            self.start(url=other.url, retry_delay=3)
            self.box.drop("late.json", [{"routing_key": "late", "id": "late"}])
            self.box.wait_for(lambda: self.box.query(
                "SELECT COUNT(*) FROM jobs WHERE attempts >= 2")[0][0] == 1, 60, "a retry")
            why = self.box.query("SELECT error_message FROM jobs")[0][0]
            self.assertIn("cannot connect", why)
            other.start()
            self.wait_all_ended(1, timeout=90)
            self.assertEqual(self.states(), {"late.json": "succeeded"})
            self.consumer = Consumer(other, "late")
            self.consumer.drain()
            self.check_received({"late": "late"})
            self.consumer.close()
            self.consumer = None
        finally:
            other.close()

if __name__ == "__main__":
    harness.main()
