"""``serve``: a run's web demo in the browser (Gradio), for either route."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("serve", help="a web demo of a run (Gradio): upload or draw a picture, see the class "
                                     "probabilities and what the model read, chat about it")
    p.add_argument("run_dir")
    p.add_argument("--port", type=int, default=7860, help="default: 7860")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default: this machine only; 0.0.0.0 for every interface)")
    p.set_defaults(func=serve, quiet=True)


def serve(args) -> int:
    from ..serve.app import build_demo, launch

    demo = build_demo(args.run_dir)
    url = launch(demo, args.host, args.port)
    print(f"serving {args.run_dir} at {url} (Ctrl-C stops)", flush=True)
    demo.block_thread()
    return 0
