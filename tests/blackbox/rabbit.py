"""A private RabbitMQ broker for black-box tests: Debian's rabbitmq-server, started on free
loopback ports with every file in a temporary directory (its own node name, Erlang port
mapper and cookie), so it never meets a system broker. Can be stopped and started again on
the same ports and data (a broker restart mid-run). A broker that cannot start raises: the
test fails, it is never skipped."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class Broker:
    def __init__(self, tls=False):
        self.dir = tempfile.mkdtemp(prefix="sluice-rabbit-")
        self.port = harness.free_port()
        self.dist_port = harness.free_port()
        self.epmd_port = harness.free_port()
        self.node = "sluice%d@localhost" % self.port
        self.tls_port = harness.free_port() if tls else None
        self.ca = os.path.join(self.dir, "ca.pem") if tls else None
        self.proc = None
        self.log = None
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.default = 127.0.0.1:%d\n" % self.port)
            f.write("loopback_users = none\n")
            # A small disk (a CI machine's) must not block publishers.
            f.write("disk_free_limit.absolute = 1MB\n")
            if tls:
                self._make_certificates()
                f.write("listeners.ssl.default = 127.0.0.1:%d\n" % self.tls_port)
                for key, name in (("cacertfile", "ca.pem"), ("certfile", "server.pem"),
                                  ("keyfile", "server.key")):
                    f.write("ssl_options.%s = %s\n" % (key, os.path.join(self.dir, name)))
                f.write("ssl_options.verify = verify_none\n")
                f.write("ssl_options.fail_if_no_peer_cert = false\n")
        self.env = dict(os.environ,
                        HOME=self.dir,
                        RABBITMQ_NODENAME=self.node,
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(self.dist_port),
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                        RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
                        ERL_EPMD_PORT=str(self.epmd_port),
                        ERL_EPMD_ADDRESS="127.0.0.1")

    def _make_certificates(self):
        """A CA and a server certificate for "localhost", made with the openssl command."""
        def run(*args):
            subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True,
                           capture_output=True)
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=sluice test CA")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost")
        with open(os.path.join(self.dir, "san.ext"), "w") as f:
            f.write("subjectAltName = DNS:localhost\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")

    @property
    def tls_url(self):
        return "amqps://guest@localhost:%d/%%2F" % self.tls_port

    @property
    def url(self):
        return "amqp://guest@127.0.0.1:%d/%%2F" % self.port

    def start(self, timeout=90):
        if not os.path.exists(SERVER):
            raise AssertionError("rabbitmq-server is not installed (scripts/install-deps)")
        self.log = open(os.path.join(self.dir, "server.out"), "ab")
        self.proc = subprocess.Popen([SERVER], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("rabbitmq-server exited (%s):\n%s" % (
                    self.proc.returncode, self.output()[-3000:]))
            if "Starting broker... completed" in self.output() or \
                    "Server startup complete" in self.output():
                if self.accepts():
                    return
            time.sleep(0.2)
        raise AssertionError("rabbitmq-server did not start in %d s:\n%s" % (
            timeout, self.output()[-3000:]))

    def accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def output(self):
        with open(os.path.join(self.dir, "server.out"), errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        """Stops the node (SIGTERM: a clean shutdown; SIGKILL: a crash) and its port mapper."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._kill_strays()
        if self.log is not None:
            self.log.close()
            self.log = None

    def _kill_strays(self):
        # beam and epmd of this node only: they carry its unique ports in their command lines.
        marks = (self.node, "ERL_EPMD_PORT=%d" % self.epmd_port, "-port %d" % self.epmd_port)
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(m in cmd or m in env for m in marks) and ("beam" in cmd or "epmd" in cmd):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass

    def close(self):
        self.stop(signal.SIGKILL)
        if os.environ.get("SLUICE_KEEP"):
            print("kept", self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)
