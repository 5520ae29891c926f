"""Prompt templates: registry ids, literal templates, and the chat messages they make."""
import pytest

from mistral_vision.errors import UserError
from mistral_vision.prompts import TEMPLATES, PromptFormat, resolve_template

ART = " .:\n%@ \n  #"                      # leading space, newline, braces-free but layout-sensitive
LABELS = ("zero", "one", "two")


@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_every_registered_id_resolves_to_its_text(tid):
    assert resolve_template(tid) == TEMPLATES[tid]
    assert "{art}" in resolve_template(tid)


def test_a_literal_template_with_art_is_used_as_is():
    t = "See:\n{art}\nOne of {labels} ({dataset}, {width}x{height})"
    assert resolve_template(t) == t


def test_a_literal_template_without_art_is_refused_listing_the_ids():
    with pytest.raises(UserError, match="unknown prompt template 'no art here'; known: ask, classify, plain"):
        resolve_template("no art here")


@pytest.mark.parametrize("bad", ["{art} {foo}", "{art} {0}", "{art} {labels"])
def test_a_bad_placeholder_names_the_allowed_fields(bad):
    with pytest.raises(UserError) as e:
        resolve_template(bad)
    msg = str(e.value)
    assert "bad placeholder" in msg and "\n" not in msg
    assert msg.endswith("allowed: {art}, {labels}, {dataset}, {width}, {height}")
    if "foo" in bad:
        assert "'foo'" in msg


def test_messages_are_system_user_assistant_in_order():
    msgs = PromptFormat("classify", "You classify images.").messages(ART, LABELS, "mnist", 3, 3, "two")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[0]["content"] == "You classify images."
    user = msgs[1]["content"]
    assert "\n" + ART + "\n" in user                           # verbatim, whitespace and all
    assert "Answer with exactly one of: zero, one, two." in user and "mnist image (3x3 characters" in user
    assert msgs[2] == {"role": "assistant", "content": "two"}


def test_without_system_or_answer_only_the_user_turn():
    msgs = PromptFormat("plain").messages(ART, LABELS, "mnist", 3, 3)
    assert msgs == [{"role": "user", "content": ART}]
    msgs = PromptFormat("{art}|{labels}").messages(ART, LABELS, "mnist", 3, 3, answer="one")
    assert msgs == [{"role": "user", "content": ART + "|zero, one, two"}, {"role": "assistant", "content": "one"}]
