"""Mistral's hosted fine-tuning and chat API, through the official ``mistralai`` SDK (pinned 2.5.1).

``client`` (credentials, server URL, error translation, retries), ``pricing`` (the price
table and offline token counts), ``jobs`` (upload / fine-tune / monitor, recorded in a run
directory) and ``predict`` (concurrent, resumable chat predictions). The SDK is imported
only inside these modules, so the rest of the package works without the ``[api]`` extra.
"""
