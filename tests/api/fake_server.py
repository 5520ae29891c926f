"""A stand-in for Mistral's API on 127.0.0.1: exactly the endpoints the pinned SDK (mistralai 2.5.1)
calls for files, fine-tuning jobs and chat completions, with the JSON shapes it validates, plus
fault injection (429 with Retry-After, 500, slow responses, 401, failing jobs).

Jobs advance one status per GET: QUEUED -> VALIDATING -> RUNNING (with a checkpoint) -> SUCCESS.
A base model whose name contains "fail" ends FAILED; "invalid" ends FAILED_VALIDATION.
Chat answers come from ``answers`` (user content -> reply), which the test fills.
"""
from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "test-key"


class FakeMistral:
    def __init__(self, fail_rate=0.0, slow_rate=0.0, slow_s=1.0, retry_after="0", seed=0):
        self.files, self.jobs, self.answers = {}, {}, {}
        self.fail_rate, self.slow_rate, self.slow_s, self.retry_after = fail_rate, slow_rate, slow_s, retry_after
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"chat": 0, "chat_ok": 0, "429": 0, "500": 0, "slow": 0, "requests": 0}
        self.always_fail: set[str] = set()        # user contents that get 500 every time
        self.started: set[str] = set()            # jobs started through /start
        self.default_answer = "I am not sure"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- endpoints ----------------------------------------------------------------------
    def upload(self, body: bytes, ctype: str):
        boundary = re.search(r"boundary=(.+)", ctype).group(1).strip('"').encode()
        for part in body.split(b"--" + boundary):
            head, _, content = part.partition(b"\r\n\r\n")
            m = re.search(rb'name="file"; filename="([^"]+)"', head)
            if m:
                content = content[:-2] if content.endswith(b"\r\n") else content
                fid = str(uuid.uuid4())
                self.files[fid] = {"id": fid, "object": "file", "size_bytes": len(content), "created_at": int(time.time()),
                                   "filename": m.group(1).decode(), "purpose": "fine-tune", "sample_type": "instruct",
                                   "source": "upload", "num_lines": content.count(b"\n")}
                return 200, self.files[fid]
        return 422, {"detail": "no file part"}

    def create_job(self, req):
        files = [f["file_id"] for f in req.get("training_files") or []]
        if not files or any(f not in self.files for f in files + list(req.get("validation_files") or [])):
            return 404, {"detail": "training file not found"}
        now = int(time.time())
        job = {"id": str(uuid.uuid4()), "object": "job", "job_type": "completion", "auto_start": req.get("auto_start", True),
               "model": req["model"], "status": "QUEUED", "created_at": now, "modified_at": now,
               "training_files": files, "validation_files": req.get("validation_files") or [],
               "hyperparameters": req.get("hyperparameters") or {}, "fine_tuned_model": None,
               "suffix": req.get("suffix"), "events": [], "checkpoints": []}
        self.jobs[job["id"]] = job
        return 200, _summary(job)

    def advance(self, job):
        if not job["auto_start"] and job["id"] not in self.started:
            return                                   # created with auto_start false: waits for /start
        model, status = job["model"], job["status"]
        nxt = {"QUEUED": "VALIDATING", "VALIDATING": "RUNNING", "RUNNING": "SUCCESS"}.get(status)
        if status == "VALIDATING" and "invalid" in model:
            nxt = "FAILED_VALIDATION"
            job["events"].append({"name": "status-updated", "created_at": int(time.time()),
                                  "data": {"error": "line 3: messages must end with an assistant turn"}})
        if status == "RUNNING" and "fail" in model:
            nxt = "FAILED"
            job["events"].append({"name": "status-updated", "created_at": int(time.time()),
                                  "data": {"error": "internal training error"}})
        if nxt == "RUNNING":
            job["checkpoints"].append({"step_number": 10, "created_at": int(time.time()),
                                       "metrics": {"train_loss": 1.25, "valid_loss": 1.5, "valid_mean_token_accuracy": 0.4}})
        if nxt == "SUCCESS":
            job["fine_tuned_model"] = f"ft:{model}:{job['suffix'] or 'x'}:{job['id'][:8]}"
            job["trained_tokens"] = 12345
        if nxt:
            job["status"], job["modified_at"] = nxt, int(time.time())

    def chat(self, req):
        user = next((m["content"] for m in reversed(req["messages"]) if m["role"] == "user"), "")
        with self.lock:
            self.counts["chat"] += 1
            roll = self.rng.random()
        if user in self.always_fail:
            return 500, {"detail": "boom"}, {}
        if roll < self.slow_rate:
            with self.lock:
                self.counts["slow"] += 1
            time.sleep(self.slow_s)
        elif roll < self.slow_rate + self.fail_rate:
            code = 429 if roll < self.slow_rate + self.fail_rate / 2 else 500
            with self.lock:
                self.counts[str(code)] += 1
            return code, {"detail": "rate limited" if code == 429 else "server error"}, (
                {"Retry-After": self.retry_after} if code == 429 else {})
        with self.lock:
            self.counts["chat_ok"] += 1
        answer = self.answers.get(user, self.default_answer)
        return 200, {"id": str(uuid.uuid4()), "object": "chat.completion", "model": req["model"],
                     "created": int(time.time()),
                     "usage": {"prompt_tokens": len(user), "completion_tokens": 3, "total_tokens": len(user) + 3},
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": answer}}]}, {}


def _summary(job):
    return {k: v for k, v in job.items() if k not in ("events", "checkpoints")}


def _handler(fake: FakeMistral):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def _send(self, code, obj, headers=None):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass     # the client gave up (timeout test)

        def _route(self, method):
            with fake.lock:
                fake.counts["requests"] += 1
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                return self._send(401, {"detail": "Unauthorized"})
            path = self.path.split("?")[0].rstrip("/")
            m = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)(/cancel|/start)?", path)
            if method == "POST" and path == "/v1/files":
                return self._send(*fake.upload(body, self.headers.get("Content-Type", "")))
            if method == "POST" and path == "/v1/fine_tuning/jobs":
                return self._send(*fake.create_job(json.loads(body)))
            if method == "GET" and path == "/v1/fine_tuning/jobs":
                data = [_summary(j) for j in fake.jobs.values()]
                return self._send(200, {"object": "list", "total": len(data), "data": data})
            if m:
                job = fake.jobs.get(m.group(1))
                if job is None:
                    return self._send(404, {"detail": f"job {m.group(1)} not found"})
                if method == "POST" and m.group(2) == "/cancel":
                    job["status"] = "CANCELLED"
                elif method == "POST" and m.group(2) == "/start":
                    fake.started.add(job["id"])
                elif method == "GET" and not m.group(2):
                    fake.advance(job)
                    return self._send(200, job)
                return self._send(200, job)
            if method == "POST" and path == "/v1/chat/completions":
                code, obj, headers = fake.chat(json.loads(body))
                return self._send(code, obj, headers)
            return self._send(404, {"detail": f"no route {method} {path}"})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

    return H
