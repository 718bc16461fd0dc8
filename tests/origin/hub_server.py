#!/usr/bin/python3
"""A small Hugging Face hub-compatible endpoint for tests/origin (stdlib only).

Serves a directory laid out as

    ROOT/ORG/NAME/COMMIT/FILE...     one directory per commit (40 hex)
    ROOT/ORG/NAME/refs/REVNAME       a branch or tag: the commit hash

with the routes and headers huggingface_hub's file_download.py relies on:

    GET|HEAD /ORG/NAME/resolve/REV/FILE   the bytes; Range (one range, 206 +
        Content-Range, 416 when unsatisfiable); ETag (quoted; the git blob
        sha1, or the sha256 for LFS-sized files); X-Repo-Commit; for files
        larger than --lfs-threshold, X-Linked-Etag ("<sha256>") and
        X-Linked-Size. With --lfs-redirect those files answer 302 to
        /cdn-lfs/... on this server (as the hub redirects LFS files to its
        CDN), which serves them without auth.
    GET /api/models/ORG/NAME[/revision/REV]   {"id", "sha", "siblings"}

Errors are 404 with X-Error-Code RepoNotFound / RevisionNotFound /
EntryNotFound (and X-Error-Message). With --token T, requests without
"Authorization: Bearer T" get 401. Prints "ready PORT" once listening. With
--log FILE, appends one line per request in the tab-separated format all the
tests/origin servers share: method, path, status, bytes sent ("-": not
known), body bytes sent, Range header, cache status (empty).
"""

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
CHUNK = 1 << 16


class HubError(Exception):
    def __init__(self, status, code, message, content_range=""):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.content_range = content_range


class Digests:
    """sha256 / git-blob sha1 per (path, size, mtime), computed once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._memo = {}

    def get(self, path, st):
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        sha256 = hashlib.sha256()
        blob = hashlib.sha1(b"blob %d\0" % st.st_size)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha256.update(chunk)
                blob.update(chunk)
        value = (sha256.hexdigest(), blob.hexdigest())
        with self._lock:
            self._memo[key] = value
        return value


class Hub:
    def __init__(self, root, lfs_threshold):
        self.root = os.path.realpath(root)
        self.lfs_threshold = lfs_threshold
        self.digests = Digests()

    def repo_dir(self, org, name):
        path = os.path.join(self.root, org, name)
        if "/" in org + name or org in ("", ".", "..") or name in ("", ".", ".."):
            raise HubError(404, "RepoNotFound", "Repository not found")
        if not os.path.isdir(path):
            raise HubError(404, "RepoNotFound", "Repository not found")
        return path

    def commit(self, repo, rev):
        if COMMIT_RE.match(rev) and os.path.isdir(os.path.join(repo, rev)):
            return rev
        ref = os.path.normpath(os.path.join(repo, "refs", rev))
        if ref.startswith(os.path.join(repo, "refs") + os.sep) and os.path.isfile(ref):
            with open(ref, encoding="ascii") as f:
                sha = f.read().strip()
            if COMMIT_RE.match(sha) and os.path.isdir(os.path.join(repo, sha)):
                return sha
        raise HubError(404, "RevisionNotFound", "Invalid rev id: " + rev)

    def entry(self, repo, commit, filename):
        base = os.path.join(repo, commit)
        path = os.path.normpath(os.path.join(base, filename))
        if not path.startswith(base + os.sep) or not os.path.isfile(path):
            raise HubError(404, "EntryNotFound", "Entry not found")
        return path

    def siblings(self, repo, commit):
        base = os.path.join(repo, commit)
        names = []
        for dirpath, _, files in os.walk(base):
            names += [os.path.relpath(os.path.join(dirpath, f), base) for f in files]
        return sorted(names)


def parse_range(header, size):
    """(start, end) inclusive, None for the whole file; HubError(416) if unsatisfiable."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # absent, multi-range or malformed: the whole file, as RFC 9110 allows
    if m.group(1) == "":
        start, end = max(0, size - int(m.group(2))), size - 1
    else:
        start = int(m.group(1))
        end = min(size - 1, int(m.group(2))) if m.group(2) else size - 1
    if start >= size or start > end or size == 0:
        raise HubError(416, "", "Range Not Satisfiable", "bytes */%d" % size)
    return start, end


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "modelpool-test-hub/1"

    def log_message(self, fmt, *args):  # the --log file replaces stderr chatter
        pass

    def do_GET(self):
        self.handle_request(head=False)

    def do_HEAD(self):
        self.handle_request(head=True)

    def handle_request(self, head):
        self.body_sent = 0
        self.status = 500
        try:
            raw_path = urllib.parse.urlsplit(self.path).path
            parts = raw_path.lstrip("/").split("/")
            if parts[0] == "cdn-lfs":
                return self.serve_cdn(parts[1:], head)
            self.check_token()
            if parts[0] == "api" and len(parts) >= 4 and parts[1] == "models":
                return self.serve_api(parts[2:])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.serve_resolve(parts, head)
            raise HubError(404, "", "Not Found")
        except HubError as e:
            self.send_error_reply(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.log_request_line()

    def check_token(self):
        token = self.server.token
        if token and self.headers.get("Authorization", "") != "Bearer " + token:
            raise HubError(401, "", "Invalid credentials in Authorization header")

    def serve_api(self, parts):
        unq = [urllib.parse.unquote(p) for p in parts]
        if len(unq) == 2:
            rev = "main"
        elif len(unq) == 4 and unq[2] == "revision":
            rev = unq[3]
        else:
            raise HubError(404, "", "Not Found")
        hub = self.server.hub
        repo = hub.repo_dir(unq[0], unq[1])
        commit = hub.commit(repo, rev)
        body = json.dumps({
            "id": unq[0] + "/" + unq[1],
            "modelId": unq[0] + "/" + unq[1],
            "sha": commit,
            "siblings": [{"rfilename": n} for n in hub.siblings(repo, commit)],
        }).encode()
        self.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.body_sent = len(body)

    def serve_resolve(self, parts, head):
        hub = self.server.hub
        org, name = urllib.parse.unquote(parts[0]), urllib.parse.unquote(parts[1])
        rev = urllib.parse.unquote(parts[3])
        filename = urllib.parse.unquote("/".join(parts[4:]))
        repo = hub.repo_dir(org, name)
        commit = hub.commit(repo, rev)
        path = hub.entry(repo, commit, filename)
        st = os.stat(path)
        sha256, blob = hub.digests.get(path, st)
        lfs = st.st_size > hub.lfs_threshold
        headers = {"X-Repo-Commit": commit}
        if lfs:
            headers["X-Linked-Etag"] = '"%s"' % sha256
            headers["X-Linked-Size"] = str(st.st_size)
        if lfs and self.server.lfs_redirect:
            host = self.headers.get("Host", "127.0.0.1:%d" % self.server.server_address[1])
            location = "http://%s/cdn-lfs/%s/%s/%s/%s" % (
                host, parts[0], parts[1], commit, "/".join(parts[4:]))
            headers.update({"ETag": '"%s"' % blob, "Location": location, "Content-Length": "0"})
            self.status = 302
            self.send_response(302)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            return
        headers["ETag"] = '"%s"' % (sha256 if lfs else blob)
        self.send_file(path, st, headers, head)

    def serve_cdn(self, parts, head):
        if len(parts) < 4:
            raise HubError(404, "", "Not Found")
        hub = self.server.hub
        unq = [urllib.parse.unquote(p) for p in parts]
        repo = hub.repo_dir(unq[0], unq[1])
        if not COMMIT_RE.match(unq[2]):
            raise HubError(404, "", "Not Found")
        path = hub.entry(repo, hub.commit(repo, unq[2]), "/".join(unq[3:]))
        st = os.stat(path)
        sha256, _ = hub.digests.get(path, st)
        self.send_file(path, st, {"ETag": '"%s"' % sha256}, head)

    def send_file(self, path, st, headers, head):
        rng = parse_range(self.headers.get("Range"), st.st_size)
        start, end = rng if rng else (0, st.st_size - 1)
        length = end - start + 1 if st.st_size else 0
        self.status = 206 if rng else 200
        self.send_response(self.status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, st.st_size))
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(start)
            left = length
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                self.body_sent += len(chunk)
                left -= len(chunk)

    def send_error_reply(self, err):
        body = json.dumps({"error": err.message}).encode()
        self.status = err.status
        self.send_response(err.status)
        if err.code:
            self.send_header("X-Error-Code", err.code)
        self.send_header("X-Error-Message", err.message)
        if err.content_range:
            self.send_header("Content-Range", err.content_range)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self.body_sent = len(body)

    def log_request_line(self):
        log = self.server.log
        if log is None:
            return
        fields = [self.command, self.path, str(self.status), "-", str(self.body_sent),
                  self.headers.get("Range", ""), ""]
        line = "\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields) + "\n"
        with self.server.log_lock:
            log.write(line)
            log.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", default="")
    ap.add_argument("--token", default="")
    ap.add_argument("--lfs-threshold", type=int, default=1 << 20)
    ap.add_argument("--lfs-redirect", action="store_true")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.hub = Hub(args.root, args.lfs_threshold)
    server.token = args.token
    server.lfs_redirect = args.lfs_redirect
    server.log = open(args.log, "a", encoding="utf-8") if args.log else None
    server.log_lock = threading.Lock()
    sys.stdout.write("ready %d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
