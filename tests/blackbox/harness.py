"""Shared helpers for black-box tests: they start the real `sluice` binary in a temporary
directory and talk to it as a user would (files, flags, signals, its SQLite database)."""

import json
import os
import re
import shutil
import socket
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

SLUICE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/sluice"
SHARED = os.environ.get("SLUICE_SHARED_DIR", os.path.join(os.path.dirname(__file__), "../../../shared"))
KCIDB = os.path.join(SHARED, "kcidb")
CORPUS_ZIP = os.path.join(KCIDB, "submissions.zip")

GOOD = {"version": {"major": 5, "minor": 3},
        "tests": [{"id": "bb:t1", "origin": "bb", "build_id": "bb:b1", "status": "PASS"}]}


def free_port():
    """A loopback TCP port nothing uses (now), below the ephemeral range, so that a server
    stopped and started again on it finds it free (scripts/free-port)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                          "free-port")
    return int(subprocess.run([script], capture_output=True, text=True, check=True).stdout)


def spawn(args, log, env=None):
    """Starts `args` with its output appended to the file `log`; the test holds no handle of
    the file (only the child does)."""
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def last_words(name, proc, log, chars=2000):
    """For a failure's message: whether `proc` still runs, and the end of its log file."""
    with open(log, errors="replace") as f:
        text = f.read()[-chars:]
    rc = proc.poll()
    return "%s: %s; its log ends:\n%s" % (
        name, "running" if rc is None else "exited (%s)" % rc, text)


def pg_server():
    """The PostgreSQL `make test` started (a libpq key=value string without dbname). Its
    absence fails the test: PostgreSQL tests are never skipped."""
    server = os.environ.get("SLUICE_TEST_PG")
    if not server:
        raise AssertionError("SLUICE_TEST_PG is not set: run the tests with `make test`, "
                             "which starts PostgreSQL")
    return server


def pg_connect(conninfo):
    import psycopg2
    con = psycopg2.connect(conninfo)
    con.autocommit = True
    return con


def pg_database(prefix="bb"):
    """A new, empty database on the test server; its libpq conninfo."""
    server = pg_server()
    name = "%s_%d_%d" % (prefix, os.getpid(), int(time.time() * 1000000) % 10**12)
    con = pg_connect(server + " dbname=postgres")
    try:
        con.cursor().execute("CREATE DATABASE " + name)
    finally:
        con.close()
    return server + " dbname=" + name


class PgServer:
    """A PostgreSQL of the test's own (scripts/pg-test-server), for tests that stop or restart
    it: the shared one must stay up for the tests running beside them."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                          "pg-test-server")

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-pg-")
        os.chmod(self.dir, 0o755)
        self._run("start")
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read())
        self.server = "host=%s port=%d user=pgtest" % (self.dir, self.port)

    def _run(self, what):
        r = subprocess.run([self.SCRIPT, what, self.dir], capture_output=True, text=True,
                           timeout=180)
        if r.returncode != 0:
            raise AssertionError("pg-test-server %s failed:\n%s" % (what, r.stderr))

    def database(self, name="db"):
        con = pg_connect(self.server + " dbname=postgres")
        try:
            con.cursor().execute("CREATE DATABASE " + name)
        finally:
            con.close()
        return self.server + " dbname=" + name

    def restart(self):
        """pg_ctl restart -m immediate: a crash and a recovery."""
        self._run("restart")

    def stop(self):
        self._run("stop")

    def start(self):
        self._run("start")

    def close(self):
        self._run("stop")
        if not os.environ.get("SLUICE_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def redis_url():
    """The Redis `make test` started (redis://127.0.0.1:PORT). Its absence fails the test."""
    url = os.environ.get("SLUICE_TEST_REDIS")
    if not url:
        raise AssertionError("SLUICE_TEST_REDIS is not set: run the tests with `make test`, "
                             "which starts Redis")
    return url


def redis_cli(url, *args):
    """A redis-cli command against `url`; its output lines."""
    r = subprocess.run(["redis-cli", "-u", url, "--raw"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("redis-cli %s: %s" % (args, r.stderr))
    return [line for line in r.stdout.splitlines() if line]


class RedisServer:
    """A Redis of the test's own (scripts/redis-test-server), for tests that stop it."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                          "redis-test-server")

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-redis-")
        os.chmod(self.dir, 0o755)
        self.url = self._run("start").strip()

    def _run(self, what):
        r = subprocess.run([self.SCRIPT, what, self.dir], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("redis-test-server %s failed:\n%s" % (what, r.stderr))
        return r.stdout

    def stop(self):
        self._run("stop")

    def start(self):
        self._run("start")

    def cli(self, *args):
        return redis_cli(self.url, *args)

    def close(self):
        self._run("stop")
        if not os.environ.get("SLUICE_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    """Runs the unittest classes of the calling module (argv[1] is the binary)."""
    unittest.main(argv=[sys.argv[0]], verbosity=2)


def extract_corpus(dest, prefix=""):
    """Unpacks the 500-file corpus into `dest` (names optionally prefixed); False if absent."""
    if not os.path.exists(CORPUS_ZIP):
        return False
    with zipfile.ZipFile(CORPUS_ZIP) as z:
        for info in z.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            name = prefix + os.path.basename(info.filename)
            tmp = os.path.join(dest, "." + name + ".tmp")
            with z.open(info) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            os.rename(tmp, os.path.join(dest, name))
    return True


class Sandbox:
    """A temporary directory with a spool and a database for one daemon: SQLite in the
    directory, or (store="postgresql", or database=CONNINFO to share one) a PostgreSQL
    database of its own on the test server."""

    def __init__(self, api=False, store="sqlite", database=None):
        self.api = api  # serve the HTTP API on an ephemeral port (else --no-api)
        self.port = None
        self.dir = tempfile.mkdtemp(prefix="sluice-bb-")
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        self.db = os.path.join(self.dir, "sluice.db")
        self.postgres = store == "postgresql" or database is not None
        if database is not None:
            self.database = database
        elif self.postgres:
            self.database = pg_database()
        else:
            self.database = "sqlite:" + self.db
        self.proc = None

    def close(self):
        if os.environ.get("SLUICE_KEEP"):
            print("kept", self.dir)
            return
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def drop(self, name, content):
        """Writes a file the way a good producer does: a dotfile, then a rename."""
        tmp = os.path.join(self.spool, "." + name + ".part")
        data = content if isinstance(content, bytes) else (
            content if isinstance(content, str) else json.dumps(content)).encode()
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.spool, name))

    def args(self, *extra):
        return [SLUICE, "serve", "--spool-dir", self.spool, "--database", self.database,
                "--settle", "0.2", "--interval", "1", "--retry-delay", "0.05"] + (
                    ["--port", "0"] if self.api else ["--no-api"]) + list(extra)

    def burst(self, *extra, timeout=300):
        return subprocess.run(self.args("--burst", *extra), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *extra, env=None):
        self.proc = spawn(self.args(*extra), os.path.join(self.dir, "daemon.log"), env=env)
        return self.proc

    def wait_for_api(self, timeout=30):
        """The port the daemon's API listens on, read from its log."""
        found = []

        def listening():
            m = re.search(r"api: listening on http://[^:]+:(\d+)", self.daemon_log())
            if m:
                found.append(int(m.group(1)))
            return bool(found)
        self.wait_for(listening, timeout, "the API to listen")
        self.port = found[0]
        return self.port

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def daemon_log(self):
        with open(os.path.join(self.dir, "daemon.log"), errors="replace") as f:
            return f.read()

    def sluice(self, *args):
        return subprocess.run([SLUICE] + list(args), capture_output=True, text=True, timeout=60)

    def query(self, sql, *params):
        """Rows of `sql` ("?" parameters) on the sandbox's database; on PostgreSQL with
        Sluice's schema and the KCIDB tables' on the search path."""
        if not self.postgres:
            return self.query_db(self.db, sql, *params)
        con = pg_connect(self.database)
        try:
            cur = con.cursor()
            cur.execute("SET search_path TO sluice, public")
            cur.execute(sql.replace("%", "%%").replace("?", "%s"), params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            con.close()

    def integrity(self):
        """The database's own consistency check: SQLite's integrity_check; on PostgreSQL,
        Sluice's counters above every id stored, and amcheck over the B-tree indexes of its
        tables. True when consistent."""
        if not self.postgres:
            return self.query("PRAGMA integrity_check") == [("ok",)]
        counters = self.query(
            "SELECT (SELECT value FROM counters WHERE name='jobs') >= "
            "COALESCE((SELECT MAX(id) FROM jobs), 0) AND (SELECT value FROM counters "
            "WHERE name='events') >= COALESCE((SELECT MAX(id) FROM events), 0)")[0][0]
        self.query("CREATE EXTENSION IF NOT EXISTS amcheck")
        self.query("SELECT bt_index_check(c.oid) FROM pg_index i JOIN pg_class c ON "
                   "c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = "
                   "'btree' AND c.relnamespace IN ('sluice'::regnamespace, "
                   "'public'::regnamespace)")
        return counters

    @staticmethod
    def query_db(db, sql, *params):
        con = sqlite3.connect(db, timeout=30)
        try:
            rows = con.execute(sql, params).fetchall()
            con.commit()  # a change is made, as on PostgreSQL (autocommit)
            return rows
        finally:
            con.close()

    def listing(self, sub=""):
        path = os.path.join(self.spool, sub)
        return sorted(os.listdir(path)) if os.path.isdir(path) else []

    def wait_for(self, predicate, timeout=30, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if predicate():
                    return
            except sqlite3.OperationalError as e:
                # The daemon made its database file and not its tables yet: not yet.
                if "no such table" not in str(e):
                    raise
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("daemon exited (%s) while waiting for %s:\n%s" % (
                    self.proc.returncode, what, self.daemon_log()[-3000:]))
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)


class SseClient:
    """A raw-socket SSE reader: frames as dicts {id, event, data}, comments counted."""

    def __init__(self, port, path, last_event_id=None, timeout=30, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connecting, so the window the server sees is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        headers = "Last-Event-ID: %s\r\n" % last_event_id if last_event_id is not None else ""
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, headers)).encode())
        self.buf = b""
        self.head = None
        self.comments = []
        self.closed = False

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
            if self.closed:
                raise AssertionError("closed before the head")
        self.head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return self.head.decode()

    def frames(self, until, timeout=30):
        """Reads frames until until(frames_so_far) is true or the server closes."""
        if self.head is None:
            self.read_head()
        got = []
        deadline = time.time() + timeout
        while not until(got):
            if time.time() > deadline:
                raise AssertionError("timed out with %d frames" % len(got))
            while b"\n\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n\n", 1)
                frame = {}
                for line in raw.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line)
                        continue
                    key, _, value = line.partition(": ")
                    frame[key] = value
                if "id" in frame or "event" in frame:
                    if "data" in frame:
                        frame["data"] = json.loads(frame["data"])
                    got.append(frame)
                    if until(got):
                        return got
            if self.closed:
                return got
            self._fill()
        return got

    def close(self):
        self.sock.close()
