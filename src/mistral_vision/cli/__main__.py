"""``python -m mistral_vision.cli``: the same as the ``mistral-vision`` command."""
import sys

from . import main

sys.exit(main())
