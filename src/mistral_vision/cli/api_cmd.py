"""``mistral-vision api …``: the arguments of Mistral's hosted fine-tuning; the work is in ``api/commands.py``."""
from __future__ import annotations

from .common import add_length_args


def register(sub) -> None:
    api = sub.add_parser("api", help="Mistral's hosted fine-tuning (needs MISTRAL_API_KEY and the [api] extra)")
    asub = api.add_subparsers(dest="action", required=True)
    p = asub.add_parser("upload", help="validate a chat JSONL, then upload it for fine-tuning")
    p.add_argument("file")
    p = asub.add_parser("estimate", help="tokens and cost of fine-tuning on a chat JSONL (offline)")
    p.add_argument("file")
    p.add_argument("--model", default="open-mistral-7b")
    add_length_args(p)
    p.add_argument("--predict", type=int, default=0, metavar="N", help="also price N predictions")
    p.add_argument("--batch-tokens", type=int, default=131072,
                   help="tokens per training step on Mistral's side (converts steps <-> epochs)")
    p.add_argument("--dataset", help="also show tokens per image for several ASCII formats of this dataset")
    p.add_argument("--data-dir")
    p = asub.add_parser("finetune", help="upload train/valid files and start a fine-tuning job")
    p.add_argument("--train", required=True)
    p.add_argument("--valid")
    p.add_argument("--model", required=True, help="base model, e.g. open-mistral-7b")
    add_length_args(p)
    p.add_argument("--lr", type=float)
    p.add_argument("--suffix")
    p.add_argument("--wandb-project", help="log to Weights & Biases (needs WANDB_API_KEY)")
    p.add_argument("--run-dir", help="where to record the job (default: the folder above data/, or runs/api-NAME)")
    p.add_argument("--no-start", action="store_true", help="create the job without starting it (`api start JOB`)")
    p.add_argument("--dry-run", action="store_true", help="validate and estimate only; create nothing")
    for name, text in (("status", "one job's status, step and losses"), ("cancel", "cancel a job"),
                       ("start", "start a job created with --no-start"),
                       ("wait", "follow a job to the end (Ctrl-C leaves it running)")):
        p = asub.add_parser(name, help=text)
        p.add_argument("job")
        if name == "wait":
            p.add_argument("--run-dir", help="also record progress and the fine-tuned model here")
            p.add_argument("--poll", type=float, default=15.0, help="seconds between checks")
    asub.add_parser("list", help="your fine-tuning jobs")
    for name, p in asub.choices.items():
        if name != "estimate":                 # offline: no server to name
            p.add_argument("--server-url", help="another API server (default: $MISTRAL_SERVER_URL, then Mistral)")
    api.set_defaults(func=run_api)


def run_api(args) -> int:
    from ..api.commands import api_command

    return api_command(args)
