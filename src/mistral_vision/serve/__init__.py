"""The web demo (``mistral-vision serve``): a run's model in the browser, on either route.

``served.py`` loads a run once and answers the page's requests with the inference library;
``app.py`` lays out the Gradio page. Gradio is an optional extra (``mistral-vision[serve]``)
and is imported only when a page is built.
"""
