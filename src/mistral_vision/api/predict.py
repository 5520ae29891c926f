"""Predictions from a (fine-tuned) model behind Mistral's chat API: concurrent, retried, resumable.

Each image becomes the same chat prompt the model was fine-tuned on; the answer is parsed to a
class by :func:`normalise_answer`, and anything it cannot parse is kept as ``unknown`` (counted
in the metrics, never dropped). Records are appended as answers arrive, each with its image
index and the retries it needed, so an interrupted run resumes with no duplicates; requests
that still fail after the retry budget are not written and are retried by the next run.
Not for: local models (``infer/predict.py`` scores those).
The record file and its resume bookkeeping are ``infer/records.py``'s.
"""
from __future__ import annotations

import random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from ..errors import UserError
from .client import RetryPolicy, describe, with_retries

def api_model(cfg, run_dir, model: str | None = None) -> str:
    """The fine-tuned model an API-backed run predicts with: given, configured, or recorded."""
    if model or cfg.api.fine_tuned_model:
        return model or cfg.api.fine_tuned_model
    from .jobs import recorded_job

    rec = recorded_job(run_dir)
    if not rec.get("fine_tuned_model"):
        raise UserError(f"{run_dir}: job {rec.get('job_id')} has no fine-tuned model yet (status "
                        f"{rec.get('status')}); `mistral-vision api wait {rec.get('job_id')} --run-dir {run_dir}`")
    return rec["fine_tuned_model"]


def normalise_answer(answer: str | None, label_names) -> int:
    """Class index of a free-text answer, or -1.

    Rules, in order: case and surrounding whitespace, quotes and punctuation are ignored; an
    answer equal to a label name is that label; otherwise the label names occurring in the
    answer as whole words are collected, longest first (so "T-shirt/top" is not also read as
    "Shirt"), and exactly one distinct label found is the answer. Zero or several -> -1.
    """
    if not answer:
        return -1
    text = answer.strip().strip("\"'`*.:;!,() \n\t").lower()
    names = [n.lower() for n in label_names]
    if text in names:
        return names.index(text)
    found, rest = set(), " " + text + " "
    for i in sorted(range(len(names)), key=lambda k: -len(names[k])):
        pat = re.compile(r"(?<![\w])" + re.escape(names[i]) + r"(?![\w])")
        if pat.search(rest):
            found.add(i)
            rest = pat.sub(" ", rest)
    return found.pop() if len(found) == 1 else -1


def chat_predict(client, model: str, prompts: list[list[dict]], concurrency: int = 8,
                 policy: RetryPolicy = RetryPolicy(), max_tokens: int = 16, seed: int = 0, progress: bool = True):
    """Send every prompt (list of messages) -> yields (position, answer or None, retries, error)."""
    from tqdm.auto import tqdm

    rngs = [random.Random(seed * 1_000_003 + i) for i in range(len(prompts))]

    def one(i):
        def request():
            r = client.chat.complete(model=model, messages=prompts[i], temperature=0.0, max_tokens=max_tokens)
            return r.choices[0].message.content if r.choices and r.choices[0].message else ""
        return with_retries(request, policy, rngs[i])

    bar = tqdm(total=len(prompts), disable=not (progress and sys.stderr.isatty()), desc=f"predict {model}",
               unit="img", mininterval=1.0, dynamic_ncols=True)
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        futures = {pool.submit(one, i): i for i in range(len(prompts))}
        for fut in as_completed(futures):
            answer, retries, err = fut.result()
            bar.update(1)
            yield futures[fut], answer, retries, err
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def score_with_api(cfg, data, todo, log_records, model: str, server_url: str | None = None, progress: bool = True):
    """Predict images ``todo`` of ``data`` through the API, appending records -> (written, seconds)."""
    from ..ascii.render import render_ascii
    from ..infer.records import prediction_record
    from ..prompts import PromptFormat
    from .client import make_client

    ac, a = cfg.api, cfg.ascii
    client = make_client(server_url or ac.server_url, ac.timeout_s)
    fmt = PromptFormat(cfg.prompt.template, cfg.prompt.system)
    arts = render_ascii(data.images[todo], a.width, a.height, a.ramp, a.invert, a.crop)
    prompts = [fmt.messages(art, data.label_names, cfg.data.dataset, a.width, a.height) for art in arts]
    policy = RetryPolicy(ac.max_retries, ac.backoff_s, ac.backoff_cap_s)
    written, failed, first_error = 0, 0, None
    t0 = time.time()
    for pos, answer, retries, err in chat_predict(client, model, prompts, ac.concurrency, policy, ac.max_tokens,
                                                  progress=progress):
        i = int(todo[pos])
        if err is not None:
            failed += 1
            first_error = first_error or err
            continue
        log_records([prediction_record(data, i, normalise_answer(answer, data.label_names), prob=None,
                                       answer=(answer or "")[:200], retries=retries)])
        written += 1
    if failed:
        raise UserError(f"{failed} of {len(todo)} requests still failed after {ac.max_retries} retries "
                        f"({describe(first_error, 'last error')}); {written} predictions were saved, "
                        "rerun the same command to retry the rest")
    return written, time.time() - t0
