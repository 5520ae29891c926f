"""The web demo's page (Gradio), laid out after LLaVA's ``gradio_web_server.py``: picture left, chat below.

Upload a picture or draw one; the page shows the label-scored probabilities of the run's classes
(or of a question's candidate answers, on question-set runs) as bars, the picture as the run
takes it and what the model read (the ASCII art, or the vision tower's input); then chat about
the picture with history, temperature, top-p and a token budget. Every handler turns a
``UserError`` (an unreadable upload, an empty drawing) into a warning and a message line in the
page, never a traceback. Gradio is imported only when a page is built. Not for: the model work
(``served.py``), or the command's flags (``cli/serve_cmd.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError

DISPLAY_SIDE = 224             # pictures are 28 px: shown enlarged, pixels kept sharp
# System fonts only: the default theme fetches Google Fonts, which an offline demo cannot reach.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO = ["ui-monospace", "DejaVu Sans Mono", "monospace"]
CSS = """
.ascii-art textarea { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; line-height: 1.0;
                      letter-spacing: 0.25em; }
#examples img { image-rendering: pixelated; }
"""
# Gradio's sketchpad opens with no tool chosen ("select the draw tool to start"): choose the brush
# when the tab opens, so that a visitor can draw at once.
PICK_BRUSH = """() => { setTimeout(() => {
  const pad = document.querySelector('#sketchpad');
  if (pad && pad.innerText.includes('select the draw tool')) pad.querySelector('button[aria-label=Brush]')?.click();
}, 200); }"""


def gradio():
    """The ``gradio`` module, or one line naming the extra to install."""
    try:
        import gradio as gr
    except ImportError:
        raise UserError("the web demo needs Gradio: pip install 'mistral-vision[serve]'") from None
    return gr


def build_demo(run_dir: str | Path, served=None):
    """The page (a ``gr.Blocks``) for the run in ``run_dir``; ``served`` reuses an already loaded ``ServedRun``.

    The model is loaded here, so a bad run folder fails before any server starts.
    """
    gr = gradio()
    from .served import ServedRun

    served = served or ServedRun(run_dir)
    questions = served.asks_questions
    ascii_route = served.cfg.route == "ascii"
    examples = served.example_files()

    def shown(read, source, missing: str, question):
        """Read a picture from ``source`` (a file, a drawing) and show what the model made of it; a
        ``UserError`` on the way is the page's message."""
        try:
            if source is None:
                raise UserError(missing)
            picture = read(source)
            reading = served.read(picture, question)
        except UserError as e:
            gr.Warning(str(e))
            return None, None, None, "", f"Error: {e}", None, [], []
        p = reading.probs
        line = (f"Answer: {reading.answer}" + (f" (p = {p[reading.answer]:.3f})" if p else " (generated)")
                if questions else f"Predicted: {reading.answer} (p = {p[reading.answer]:.3f})")
        label = p if p is not None else reading.answer
        return label, enlarge(picture), enlarge(reading.seen.image), reading.seen.text or "", line, picture, [], []

    def predict_upload(path, question=None):
        return shown(served.read_image, path or None, "upload an image file first (PNG, JPEG, ...)", question)

    def on_upload(path, question=None):
        if not path:                             # the file was removed: clear, nothing to warn about
            return None, None, None, "", "", None, [], []
        return predict_upload(path, question)

    def predict_drawing(drawing, question=None):
        composite = drawing.get("composite") if isinstance(drawing, dict) else drawing
        return shown(served.read_drawing, composite, "draw a digit or item on the sketchpad first", question)

    def chat(message, pairs, picture, temperature, top_p, max_new_tokens):
        pairs = pairs or []
        if picture is None:
            gr.Warning("upload or draw a picture first, then ask about it")
            return messages_of(pairs), pairs, message, "Error: upload or draw a picture first"
        if not (message or "").strip() and pairs:
            return messages_of(pairs), pairs, message, "Type a message first"
        try:
            answer = served.reply(picture, pairs, message or "", float(temperature), float(top_p), int(max_new_tokens))
        except UserError as e:
            gr.Warning(str(e))
            return messages_of(pairs), pairs, message, f"Error: {e}"
        pairs = pairs + [(message or "", answer)]
        return messages_of(pairs), pairs, "", gr.skip()

    with gr.Blocks(title=f"mistral-vision: {served.name}", analytics_enabled=False) as demo:
        picture = gr.State(None)                 # the picture as the run takes it, for the chat
        pairs = gr.State([])                     # (user, assistant) exchanges about it
        gr.Markdown(f"## mistral-vision · `{served.name}`\n{_describe(served)}")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Upload"):
                    upload = gr.File(label="Image file (PNG, JPEG, ...)", type="filepath", elem_id="upload")
                    predict_button = gr.Button("Answer" if questions else "Predict", variant="primary")
                with gr.Tab("Draw") as draw_tab:
                    sketch = gr.Sketchpad(label="Draw with the mouse", type="numpy", canvas_size=(280, 280),
                                          elem_id="sketchpad",
                                          brush=gr.Brush(default_size=22, colors=["#000000"], color_mode="fixed"))
                    drawing_button = gr.Button("Answer about the drawing" if questions else "Predict the drawing",
                                               variant="primary")
                question = gr.Dropdown(choices=[(f"{q.type}: {q.text}", q.text) for q in served.questions],
                                       value=served.questions[0].text if served.questions else None,
                                       allow_custom_value=True, visible=questions,
                                       label="Question (one of each type the run was trained on, or your own)")
                example = gr.Image(type="filepath", visible=False)     # what an example click sets
                if examples:
                    gr.Examples(examples=[[f] for f in examples], inputs=[example], examples_per_page=len(examples),
                                label="Example images from the run's data (click one)", elem_id="examples")
            with gr.Column(scale=1):
                probs = gr.Label(num_top_classes=10, label="Answer probabilities" if questions
                                 else "Class probabilities (label-scored)")
                status = gr.Textbox(label="Message", interactive=False, elem_id="status")
                with gr.Row():
                    size = f" at {served.side}x{served.side}" if served.side else ""
                    yours = gr.Image(label=f"Your picture{size}", interactive=False, height=240)
                    seen = gr.Image(label="The ASCII art decoded back to pixels" if ascii_route
                                    else "The vision tower's input", interactive=False, height=240,
                                    visible=not served.tower_sees_the_picture())     # else one panel says it all
                art = gr.Textbox(label="The ASCII art the model read", visible=ascii_route, interactive=False,
                                 lines=min(served.cfg.ascii.height, 40) if ascii_route else 1,
                                 elem_classes="ascii-art")
        chatbot = gr.Chatbot(label="Chat about the picture", height=320)
        with gr.Row():
            message = gr.Textbox(show_label=False, placeholder="Ask about the picture and press Enter", scale=8)
            send = gr.Button("Send", variant="primary", scale=1)
            clear = gr.Button("Clear chat", scale=1)
        gr.Examples(examples=[[q.text] for q in served.questions] or [["What is this?"]], inputs=[message],
                    label="Example messages")
        with gr.Accordion("Parameters", open=False):
            temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.1, label="Temperature (0: greedy, as `chat`)")
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top P")
            max_tokens = gr.Slider(1, 256, value=32, step=1, label="Max new tokens")

        results = [probs, yours, seen, art, status, picture, chatbot, pairs]   # a new picture starts a new chat
        predict_button.click(predict_upload, [upload, question], results, api_name="predict")
        upload.change(on_upload, [upload, question], results, api_visibility="private")
        example.change(on_upload, [example, question], results, api_visibility="private")
        draw_tab.select(None, js=PICK_BRUSH)
        drawing_button.click(predict_drawing, [sketch, question], results, api_name="predict_drawing")
        talk = dict(fn=chat, inputs=[message, pairs, picture, temperature, top_p, max_tokens],
                    outputs=[chatbot, pairs, message, status])
        send.click(api_name="chat", **talk)
        message.submit(api_visibility="private", **talk)
        clear.click(lambda: ([], [], ""), None, [chatbot, pairs, message], api_visibility="private")
    demo.served = served                         # the tests and `launch` reach the loaded run through the page
    return demo


def launch(demo, host: str = "127.0.0.1", port: int = 7860) -> str:
    """Start serving ``demo`` at http://host:port in a background thread; -> its URL.

    ``demo.block_thread()`` then waits until Ctrl-C (the command); tests call ``demo.close()``.
    """
    gr = gradio()
    theme = gr.themes.Default(font=FONTS, font_mono=MONO)
    try:
        demo.launch(server_name=host, server_port=port, theme=theme, css=CSS, prevent_thread_lock=True, quiet=True,
                    allowed_paths=[str(Path(f).parent) for f in demo.served.example_files()])
    except OSError as e:
        if "Cannot find empty port" in str(e):            # Gradio's words for any failure to bind
            raise UserError(f"cannot listen on {host}:{port} (the port is in use, or the host is no address of "
                            "this machine); choose another --port or --host") from None
        raise
    return demo.local_url


def messages_of(pairs) -> list[dict]:
    """(user, assistant) exchanges as the chatbot's messages."""
    out = []
    for user, answer in pairs:
        out += [{"role": "user", "content": user or "(the picture alone)"},
                {"role": "assistant", "content": answer or "(empty: the model ended its answer at once)"}]
    return out


def enlarge(picture: np.ndarray | None, side: int = DISPLAY_SIDE) -> np.ndarray | None:
    """A small picture scaled up by a whole factor (nearest pixel, so each pixel stays a sharp square)."""
    if picture is None:
        return None
    picture = np.asarray(picture, np.uint8)
    k = max(1, side // max(picture.shape[:2]))
    return np.kron(picture, np.ones((k, k) + (1,) * (picture.ndim - 2), np.uint8)) if k > 1 else picture


def _describe(served) -> str:
    cfg = served.cfg
    route = ("ASCII route: the picture is rendered as ASCII art into the prompt" if cfg.route == "ascii"
             else "LLaVA route: a vision tower and projector feed the language model")
    if served.asks_questions:
        what = f"Answers questions about {cfg.data.dataset} pictures ({len(served.questions)} question types)."
    else:
        what = f"Classifies {cfg.data.dataset} pictures into {len(served.task.label_names)} classes by label scoring."
    return f"{what} {route}."
