"""Chat templates to the token: each template's ids and assistant mask against the reference conventions.

Every expected conversation below is written out by hand from its reference (LLaVA's
``llava/conversation.py`` and ``preprocess_v1`` / ``preprocess_llama_2`` / ``preprocess_plain``,
Meta's Llama-2 chat format, Mistral's v1 instruct format) as segments ``(text, trained)``; the
whole string is tokenized by the same tokenizer as the template's rendering, and the trained
segments give the mask (the answers + EOS, as LLaVA trains them). Two tokenizers: the tiny
character tokenizer (one token per character, so any stray space shows) and Mistral's v1
SentencePiece vocabulary shipped with ``mistral-common`` (the real pieces; for ``mistral`` the
ids are also compared with mistral-common's own encoder, a reference independent of our text).
"""
from __future__ import annotations

import pytest

from mistral_vision.models.chat_templates import CHAT_TEMPLATES
from mistral_vision.tasks.chat import assistant_mask

VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions.")
U1, A1, U2, A2, U3, A3 = ("<image>\nWhat digit is this?", "7", "Is it odd?", "yes", "Add 3?", "10")


def turns(*texts):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


THREE = turns(U1, A1, U2, A2, U3, A3)
SYSTEM = [{"role": "system", "content": "Be brief."}]

# (template, messages, segments): the reference rendering, (text, is it trained).
CASES = {
    # conv_vicuna_v1, SeparatorStyle.TWO: system + " " + "USER: u" + " " + "ASSISTANT: a" + "</s>" + "USER: ..."
    # (tokenizer(prompt) adds <s>); preprocess_v1 trains each answer and its </s>.
    "vicuna-v1": (THREE, [("<s>" + VICUNA_SYSTEM + " USER: " + U1 + " ASSISTANT:", 0), (" " + A1 + "</s>", 1),
                          ("USER: " + U2 + " ASSISTANT:", 0), (" " + A2 + "</s>", 1),
                          ("USER: " + U3 + " ASSISTANT:", 0), (" " + A3 + "</s>", 1)]),
    "vicuna-v1+system": (SYSTEM + THREE[:4], [("<s>Be brief. USER: " + U1 + " ASSISTANT:", 0), (" " + A1 + "</s>", 1),
                                              ("USER: " + U2 + " ASSISTANT:", 0), (" " + A2 + "</s>", 1)]),
    # Llama-2 chat: <s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{u1} [/INST] {a1} </s><s>[INST] {u2} [/INST] {a2} </s>
    # (Meta's reference encodes each exchange with bos and eos; LLaVA's conv_llama_2 writes the same).
    "llama-2+system": (SYSTEM + THREE, [("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n" + U1 + " [/INST]", 0),
                                        (" " + A1 + " </s>", 1), ("<s>[INST] " + U2 + " [/INST]", 0),
                                        (" " + A2 + " </s>", 1), ("<s>[INST] " + U3 + " [/INST]", 0),
                                        (" " + A3 + " </s>", 1)]),
    "llama-2": (THREE[:4], [("<s>[INST] " + U1 + " [/INST]", 0), (" " + A1 + " </s>", 1),
                            ("<s>[INST] " + U2 + " [/INST]", 0), (" " + A2 + " </s>", 1)]),
    # Mistral v1 instruct: <s>[INST] u1 [/INST] a1</s>[INST] u2 [/INST] a2</s> (one BOS; the system
    # prompt joins the first user turn with a blank line, as mistral-common's v1 encoder does).
    "mistral": (THREE, [("<s>[INST] " + U1 + " [/INST]", 0), (" " + A1 + "</s>", 1), ("[INST] " + U2 + " [/INST]", 0),
                        (" " + A2 + "</s>", 1), ("[INST] " + U3 + " [/INST]", 0), (" " + A3 + "</s>", 1)]),
    "mistral+system": (SYSTEM + THREE[:4], [("<s>[INST] Be brief.\n\n" + U1 + " [/INST]", 0), (" " + A1 + "</s>", 1),
                                            ("[INST] " + U2 + " [/INST]", 0), (" " + A2 + "</s>", 1)]),
    # conv_llava_plain / preprocess_plain: <s> + <image> + caption + "\n", the caption and "\n" trained.
    # Deliberate difference: our plain also writes and trains EOS, because a classification run
    # whose last stage is plain is prompted with it and must stop after its answer (LLaVA only
    # trains the projector under plain and never generates with it).
    "plain": (turns("<image>", "A 7 in the top left cell."),
              [("<s><image>", 0), ("A 7 in the top left cell.\n</s>", 1)]),
}


def reference(tok, segments):
    """(ids, mask) of the hand-written segments: the whole text tokenized, a token trained if it starts in a
    trained segment."""
    text, spans, pos = "", [], 0
    for seg, trained in segments:
        if trained:
            spans.append((pos, pos + len(seg)))
        text, pos = text + seg, pos + len(seg)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(a <= s < b for a, b in spans)) for s, _ in enc["offset_mapping"]]
    return list(enc["input_ids"]), mask


def with_template(tok, template_id):
    import copy

    tok = copy.copy(tok)
    tok.chat_template = CHAT_TEMPLATES[template_id]
    return tok


@pytest.fixture(scope="module")
def char_tok():
    from mistral_vision.models.backbones import get_backbone, load_tokenizer

    tok = load_tokenizer(get_backbone("mistral-tiny"))
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tok


@pytest.fixture(scope="module")
def mistral_v1(tmp_path_factory):
    """Mistral's v1 SentencePiece vocabulary (from mistral-common's package data) as a transformers
    tokenizer, with the legacy prefix-space behaviour of Mistral-7B-Instruct-v0.1/0.2's tokenizer.json."""
    import json
    import os
    import shutil

    mistral_common = pytest.importorskip("mistral_common")
    src = os.path.join(os.path.dirname(mistral_common.__file__), "data", "tokenizer.model.v1")
    if not os.path.isfile(src):
        pytest.skip("mistral-common without its v1 tokenizer model")
    folder = tmp_path_factory.mktemp("mistral-v1")
    shutil.copy(src, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
         "legacy": True}))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tok


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("which", ["char_tok", "mistral_v1"])
def test_template_renders_the_reference_ids_and_trains_the_answers(case, which, request):
    tok = request.getfixturevalue(which)
    messages, segments = CASES[case]
    tok = with_template(tok, case.split("+")[0])
    ids, mask = assistant_mask(tok, messages)
    ref_ids, ref_mask = reference(tok, segments)
    assert tok.convert_ids_to_tokens(ids) == tok.convert_ids_to_tokens(ref_ids)
    assert mask == ref_mask


@pytest.mark.parametrize("case", ["vicuna-v1", "llama-2", "mistral"])
def test_generation_prompt_is_the_reference_up_to_the_next_answer(case, char_tok):
    """Inference (``question_ids``) renders the turns so far and stops where the reference answer begins."""
    messages, segments = CASES[case]
    tok = with_template(char_tok, case)
    text = tok.apply_chat_template(messages[:3], tokenize=False, add_generation_prompt=True)
    assert text == "".join(seg for seg, _ in segments[:3])


@pytest.mark.parametrize("with_system", [False, True])
def test_mistral_matches_mistral_commons_own_encoder(mistral_v1, with_system):
    """The ids of a multi-turn conversation equal those of mistral-common's v1 instruct tokenizer."""
    import os

    import mistral_common
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    path = os.path.join(os.path.dirname(mistral_common.__file__), "data", "tokenizer.model.v1")
    ref = MistralTokenizer.from_file(path, mode=ValidationMode.finetuning)
    kinds = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage}
    messages = (SYSTEM if with_system else []) + turns("What digit is this?", A1, U2, A2, U3, A3)
    want = ref.encode_chat_completion(ChatCompletionRequest(
        messages=[kinds[m["role"]](content=m["content"]) for m in messages])).tokens
    ids, _ = assistant_mask(with_template(mistral_v1, "mistral"), messages)
    assert ids == want
