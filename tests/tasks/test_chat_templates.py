"""Answer-only labels come from each chat template's own assistant mask; a hand-built mask must agree."""
import pytest

from mistral_vision.models.backbones import get_backbone, load_tokenizer
from mistral_vision.models.chat_templates import CHAT_TEMPLATES
from mistral_vision.prompts import PromptFormat
from mistral_vision.tasks.chat import assistant_mask

CONVERSATIONS = [
    [{"role": "user", "content": "<image>\nWhat digit is this?"}, {"role": "assistant", "content": "7"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<image>\nHow many items?"},
     {"role": "assistant", "content": "3"}, {"role": "user", "content": "Is there a 4?"},
     {"role": "assistant", "content": "no"}, {"role": "user", "content": "Sum of the digits?"},
     {"role": "assistant", "content": "12"}],
]


def tokenizer_with(template_id):
    tok = load_tokenizer(get_backbone("mistral-tiny"))
    tok.chat_template = CHAT_TEMPLATES[template_id]
    return tok


def hand_mask(tok, messages):
    """1 on the tokens each assistant turn adds to the rendered conversation, found by rendering prefixes."""
    render = lambda msgs: tok(tok.apply_chat_template(msgs, tokenize=False), add_special_tokens=False)["input_ids"]  # noqa: E731
    full = render(messages)
    mask = [0] * len(full)
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before, after = render(messages[:k]), render(messages[:k + 1])
        assert full[:len(after)] == after            # each turn only appends
        for i in range(len(before), len(after)):
            mask[i] = 1
    return full, mask


@pytest.mark.parametrize("template_id", sorted(CHAT_TEMPLATES))
@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
def test_template_mask_equals_hand_built_mask(template_id, conv):
    tok = tokenizer_with(template_id)
    messages = CONVERSATIONS[conv]
    ids, mask = assistant_mask(tok, messages)
    ref_ids, ref_mask = hand_mask(tok, messages)
    assert ids == ref_ids
    assert mask == ref_mask
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    text = tok.decode([t for t, m in zip(ids, mask) if m])
    for a in answers:
        assert a in text
    assert text.count(tok.eos_token) == len(answers)                      # every turn's EOS is trained


@pytest.mark.parametrize("template_id", sorted(CHAT_TEMPLATES))
def test_task_label_ids_are_the_masked_answer(template_id):
    from mistral_vision.tasks.ascii import AsciiTask

    tok = tokenizer_with(template_id)
    task = AsciiTask(tok, ("cat", "dog"), "mnist", 4, 4, " .:-=+*#%@", prompt=PromptFormat("plain"))
    ids, mask = assistant_mask(tok, task.content_messages("x", "dog"))
    assert task.label_ids[1] == [t for t, m in zip(ids, mask) if m]
    assert tok.decode(task.label_ids[1]).strip().startswith("dog") and task.label_ids[1][-1] == tok.eos_token_id


def test_a_template_without_generation_tags_falls_back_to_the_prompt_diff():
    from mistral_vision.tasks.ascii import AsciiTask

    tok = tokenizer_with("mistral")
    tok.chat_template = tok.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    assert assistant_mask(tok, CONVERSATIONS[0]) is None
    task = AsciiTask(tok, ("cat", "dog"), "mnist", 4, 4, " .:-=+*#%@")
    assert tok.decode(task.label_ids[0]) == " cat</s>"          # mistral: "[/INST] cat</s>"


def test_vicuna_is_the_fallback_for_vicuna_only():
    assert get_backbone("vicuna-7b").chat_template == "vicuna-v1"
    assert get_backbone("llama-2-7b").chat_template is None


def as_parts(messages):
    """transformers' standard message format: content as a list of image / text parts."""
    out = []
    for m in messages:
        parts = []
        for i, piece in enumerate(m["content"].split("\n")):
            parts.append({"type": "image"} if piece == "<image>" else {"type": "text", "text": piece})
        out.append({"role": m["role"], "content": parts})
    return out


@pytest.mark.parametrize("template_id", sorted(CHAT_TEMPLATES))
@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
def test_content_as_parts_renders_as_the_string_it_stands_for(template_id, conv):
    """processor.apply_chat_template's format ([{"type": "image"}, {"type": "text", ...}]) is accepted, as
    HF's LLaVA templates accept it, and renders exactly what training saw ("<image>\\nquestion")."""
    tok = tokenizer_with(template_id)
    messages = CONVERSATIONS[conv]
    parts = as_parts(messages)
    assert parts[-2 if conv == 0 else 1]["content"][0] == {"type": "image"}
    for prompt in (False, True):
        n = len(messages) - 1 if prompt else len(messages)
        assert (tok.apply_chat_template(parts[:n], tokenize=False, add_generation_prompt=prompt)
                == tok.apply_chat_template(messages[:n], tokenize=False, add_generation_prompt=prompt))
    assert assistant_mask(tok, parts) == assistant_mask(tok, messages)
