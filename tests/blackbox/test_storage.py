"""Log excerpts over 256 characters go to a storage service exactly as the reference ingester
sends them, deduplicated by sha256 (also across restarts); a failing or hung service never
loses the excerpt (it stays inline) and never stalls ingestion. The service here is a real
HTTP server on 127.0.0.1 started by the test."""

import gzip
import hashlib
import http.server
import json
import os
import re
import threading
import time
import unittest

import harness

TOKEN = "s3cret-token"


class Storage(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), StorageHandler)
        self.mode = "ok"
        self.uploads = []  # (path, text)
        self.failures = 0
        self.lock = threading.Lock()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


class StorageHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if srv.mode == "hang":
            time.sleep(30)
            return
        if srv.mode == "fail500":
            with srv.lock:
                srv.failures += 1
            self.send_response(500)
            self.end_headers()
            return
        ok = (self.path == "/upload" and
              self.headers.get("Authorization") == "Bearer " + TOKEN)
        boundary = re.search(r'boundary=(.+)', self.headers.get("Content-Type", ""))
        fields = {}
        if boundary:
            for part in body.split(b"--" + boundary.group(1).encode()):
                head, _, data = part.partition(b"\r\n\r\n")
                name = re.search(rb'name="([^"]+)"', head)
                if name:
                    fields[name.group(1).decode()] = (head, data[:-2])
        if not ok or "file0" not in fields or "path" not in fields:
            self.send_response(400)
            self.end_headers()
            return
        self.server_check_filename = b'filename="logexcerpt.txt.gz"' in fields["file0"][0]
        text = gzip.decompress(fields["file0"][1]).decode()
        path = fields["path"][1].decode()
        with srv.lock:
            srv.uploads.append((path, text, self.server_check_filename))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")


def submission(excerpts):
    return {"version": {"major": 5, "minor": 3}, "tests": [
        {"id": "st:t%d" % i, "origin": "st", "build_id": "st:b1", "log_excerpt": e,
         "output_files": [{"name": "dmesg", "url": "https://example.org/dmesg"}]}
        for i, e in enumerate(excerpts)]}


class StorageTest(unittest.TestCase):
    def setUp(self):
        self.box = harness.Sandbox()
        self.storage = Storage()
        threading.Thread(target=self.storage.serve_forever, daemon=True).start()
        os.environ["STORAGE_TOKEN"] = TOKEN
        os.environ["STORAGE_BASE_URL"] = self.storage.base

    def tearDown(self):
        self.storage.shutdown()
        self.box.close()

    def test_long_excerpts_are_uploaded_once_and_replaced_by_a_url(self):
        long_text = "kernel BUG at mm/slub.c:42\n" * 20
        self.box.drop("a.json", submission([long_text, long_text, "short excerpt"]))
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        sha = hashlib.sha256(long_text.encode()).hexdigest()
        self.assertEqual([(p, t) for p, t, _ in self.storage.uploads],
                         [("logexcerpt/" + sha, long_text)])
        self.assertTrue(self.storage.uploads[0][2], "file0 must be named logexcerpt.txt.gz")
        rows = dict((i, (e, json.loads(f))) for i, e, f in self.box.query(
            "SELECT id, log_excerpt, output_files FROM tests"))
        url = "%s/logexcerpt/%s/logexcerpt.txt.gz" % (self.storage.base, sha)
        for tid in ("st:t0", "st:t1"):
            self.assertEqual(rows[tid][0], "")
            self.assertEqual(rows[tid][1][-1], {"name": "log_excerpt", "url": url})
            self.assertEqual(rows[tid][1][0]["name"], "dmesg")
        self.assertEqual(rows["st:t2"][0], "short excerpt")

        # After a restart the same text is not uploaded again (the dedup cache persists).
        self.box.drop("b.json", submission([long_text]))
        self.assertEqual(self.box.burst().returncode, 0)
        self.assertEqual(len(self.storage.uploads), 1)

    def test_a_failing_service_keeps_the_excerpt_inline(self):
        self.storage.mode = "fail500"
        text = "x" * 300
        self.box.drop("a.json", submission([text]))
        r = self.box.burst()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.box.query("SELECT log_excerpt FROM tests"), [(text,)])
        self.assertGreaterEqual(self.storage.failures, 2)  # it tried again before giving up

    def test_a_hung_service_does_not_stall_ingestion(self):
        self.storage.mode = "hang"
        text = "y" * 400
        self.box.drop("a.json", submission([text]))
        t0 = time.time()
        r = self.box.burst("--storage-timeout", "0.5", "--storage-connect-timeout", "0.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.time() - t0, 15)
        self.assertEqual(self.box.query("SELECT log_excerpt FROM tests"), [(text,)])

    def test_no_token_means_no_upload(self):
        del os.environ["STORAGE_TOKEN"]
        self.box.drop("a.json", submission(["z" * 500]))
        self.assertEqual(self.box.burst().returncode, 0)
        self.assertEqual(self.storage.uploads, [])


if __name__ == "__main__":
    harness.main()
