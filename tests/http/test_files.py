"""/_local/files (SPEC §10.7, ERRATA I18, minor 21): listing, deletion, confinement to data_dir."""
import os
import time

import harness
from harness import ADMIN, READER, WRITER, Server, ServerTestCase, base_config


class FilesTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.fresh_dir("files")
        cls.data = os.path.join(d, "data")
        cls.outside = os.path.join(d, "outside")
        os.makedirs(cls.outside)
        with open(os.path.join(cls.outside, "secret.txt"), "w") as f:
            f.write("secret")
        # a sibling whose name starts with data_dir's name: INFINI's prefix check let it escape
        os.makedirs(os.path.join(d, "data_backup"))
        with open(os.path.join(d, "data_backup", "x.txt"), "w") as f:
            f.write("x")
        cfg = base_config(cls.data, os.path.join(cls.data, "trifle.db"),
                          limits="  max_list_entries: 6")
        cls.srv = Server(d, cfg).start()
        # an own write so the database has its -wal file
        cls.srv.request("POST", "/api/v1/metrics",
                        {"key": "f", "at": "2026-01-01T00:00:00Z", "values": {"n": 1}},
                        token=WRITER)
        cls.d = d

    def setUp(self):
        q = os.path.join(self.data, "queue")
        os.makedirs(os.path.join(q, "deep"), exist_ok=True)
        with open(os.path.join(q, "a.dat"), "wb") as f:
            f.write(b"12345")
        with open(os.path.join(q, "deep", "b.dat"), "wb") as f:
            f.write(b"1234567")
        for name, target in (("link-out", self.outside), ("link-file",
                                                          os.path.join(self.outside, "secret.txt"))):
            p = os.path.join(self.data, name)
            if not os.path.lexists(p):
                os.symlink(target, p)

    def delete(self, raw, token=ADMIN):
        return self.srv.request("DELETE", "/_local/files/" + raw, token=token)

    def listing(self, raw=None, token=ADMIN):
        path = "/_local/files/_list" if raw is None else "/_local/files/%s/_list" % raw
        return self.srv.request("GET", path, token=token)

    def test_auth(self):
        for call in (lambda t: self.listing(None, t), lambda t: self.listing("queue", t),
                     lambda t: self.delete("queue%2Fa.dat", t)):
            self.assertReason(call(None), 401, "Bad token")
            self.assertReason(call("trf_nobody_has_this_token"), 401, "Bad token")
            self.assertReason(call(READER), 403, "admin token required")
            self.assertReason(call(WRITER), 403, "admin token required")
        self.assertTrue(os.path.exists(os.path.join(self.data, "queue", "a.dat")))

    def test_list_one(self):
        st, _, raw, doc = self.listing("queue")
        self.assertEqual(st, 200, raw)
        self.assertFalse(doc["truncated"])
        (entry,) = doc["disk"]
        self.assertEqual(entry["name"], "queue")
        self.assertEqual(entry["type"], 1)
        self.assertEqual(entry["size"], 12)
        self.assertRegex(entry["create_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual([c["name"] for c in entry["children"]], ["a.dat", "deep"])
        self.assertEqual(entry["children"][0], {"name": "a.dat", "type": 0, "size": 5,
                                                "create_time": entry["children"][0]["create_time"],
                                                "children": None})
        self.assertEqual(entry["children"][1]["children"][0]["name"], "b.dat")
        st, _, raw, doc = self.listing("queue%2Fdeep%2Fb.dat")
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc["disk"][0]["name"], "b.dat")
        self.assertEqual(doc["disk"][0]["size"], 7)

    def test_list_all_truncated(self):
        st, _, raw, doc = self.listing()
        self.assertEqual(st, 200, raw)
        names = [e["name"] for e in doc["disk"]]
        self.assertEqual(names, sorted(names))
        self.assertTrue(doc["truncated"])  # more than max_list_entries (6) entries exist
        links = [e for e in doc["disk"] if e["name"].startswith("link")]
        for e in links:
            self.assertEqual((e["type"], e["size"], e["children"]), (2, 0, None))

    def test_traversal(self):
        for raw in ("..", "%2e%2e", "%2E%2E", ".", "..%2Fdata_backup%2Fx.txt",
                    "queue%2F..%2F..%2Foutside%2Fsecret.txt", "%2Fetc%2Fpasswd", "%2F",
                    "queue%2F%2Fa.dat", "queue%2F", "queue%2F.%2Fa.dat", "a%00b", "queue%5Ca.dat",
                    "%ff%fe", "%zz", "x%2", "a" * 1025):
            with self.subTest(raw=raw):
                self.assertReason(self.delete(raw), 400, "invalid path")
                self.assertReason(self.listing(raw), 400, "invalid path")
        # a `..` segment in the URL path itself is not a file route at all
        st, _, _, _ = self.srv.request("DELETE", "/_local/files/../x", token=ADMIN)
        self.assertIn(st, (400, 404))
        self.assertTrue(os.path.exists(os.path.join(self.outside, "secret.txt")))
        self.assertTrue(os.path.exists(os.path.join(self.d, "data_backup", "x.txt")))

    def test_symlinks_not_followed(self):
        for raw in ("link-out", "link-out%2Fsecret.txt", "link-file"):
            with self.subTest(raw=raw):
                self.assertReason(self.delete(raw), 403, "symlinks are not followed")
                self.assertReason(self.listing(raw), 403, "symlinks are not followed")
        self.assertTrue(os.path.exists(os.path.join(self.outside, "secret.txt")))
        self.assertTrue(os.path.islink(os.path.join(self.data, "link-file")))

    def test_delete(self):
        self.assertReason(self.delete("nothing.here"), 404, "file not found")
        self.assertReason(self.delete("queue%2Fnope%2Fx"), 404, "file not found")
        self.assertReason(self.delete("queue%2Fa.dat%2Fx"), 404, "file not found")
        self.assertReason(self.delete("queue"), 400, "not a regular file")
        st, _, raw, doc = self.delete("queue%2Fa.dat")
        self.assertEqual(st, 200, raw)
        self.assertEqual(doc, {"acknowledged": True, "file": "queue/a.dat"})
        self.assertFalse(os.path.exists(os.path.join(self.data, "queue", "a.dat")))
        self.assertReason(self.delete("queue%2Fa.dat"), 404, "file not found")
        # UTF-8 names, decoded exactly once (%2525 is the file "%25")
        for name, raw in (("é.dat", "%C3%A9.dat"), ("%25", "%2525")):
            with open(os.path.join(self.data, name), "w") as f:
                f.write("x")
            st, _, raw_body, doc = self.delete(raw)
            self.assertEqual(st, 200, raw_body)
            self.assertEqual(doc["file"], name)

    def test_files_in_use(self):
        deadline = time.monotonic() + 5
        while not os.path.exists(os.path.join(self.data, "stats", "simple")):
            self.assertLess(time.monotonic(), deadline, "no checkpoint of the stats file")
            time.sleep(0.05)
        for name in ("stats/simple", "trifle.db", "trifle.db-wal"):
            p = os.path.join(self.data, name)
            self.assertTrue(os.path.exists(p), p)
        for raw in ("stats%2Fsimple", "trifle.db", "trifle.db-wal", "trifle.db-shm",
                    "trifle.db-journal", "tokens"):
            p = os.path.join(self.data, raw.replace("%2F", "/"))
            if not os.path.exists(p):
                open(p, "w").close()  # a file by that name is protected whether or not in use
            with self.subTest(raw=raw):
                self.assertReason(self.delete(raw), 409, "file in use")
            self.assertTrue(os.path.exists(p))


if __name__ == "__main__":
    harness.run_main()
