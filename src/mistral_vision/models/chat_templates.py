"""Chat templates by id, each marking the assistant's answer with ``{% generation %}``.

Family quirks need templates of their own: base checkpoints ship none (Mistral-7B-v0.1,
Llama-2-7B), and Vicuna v1.5 - LLaVA-1.5's LLM - was trained on the ``USER: ... ASSISTANT:``
format, not Llama-2's ``[INST]``. Every template here wraps the answer (+ EOS) in
``{% generation %}...{% endgeneration %}``, so transformers' ``return_assistant_tokens_mask``
says which tokens are the answer: training labels come from the template itself rather than
from hand-computed offsets (the "tokenization mismatch" that LLaVA-derived code reports most).
Not for: deciding which template a backbone uses (``backbones.py``) or the prompt text (``prompts.py``).
"""
from __future__ import annotations

from ..errors import one_of

# A message's text: its content string, or transformers' list of parts ({"type": "image"} and {"type": "text",
# "text": ...}, what processor.apply_chat_template takes), joined by newlines with an image as <image> - the
# "<image>\nquestion" the LLaVA route trains on. On the ASCII route the image is art: send it as text.
CONTENT = (
    "{% macro text(message) %}{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if not loop.first %}{{ '\n' }}{% endif %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{% endmacro %}"
)
# <s> [system\n] user <sep> answer </s>. "<sep>" marks where the answer starts (tiny char tokenizer).
TINY = CONTENT + (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ text(message) + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ text(message) + '<sep>' }}"
    "{% elif message['role'] == 'assistant' %}{% generation %}{{ text(message) + eos_token }}{% endgeneration %}"
    "{% endif %}{% endfor %}"
)
# Mistral's v1 instruct format (mistral-common; Mistral-7B-Instruct-v0.1/0.2):
# <s>[INST] u1 [/INST] a1</s>[INST] u2 [/INST] a2</s>. One BOS; the answer follows "[/INST]" after a
# space (mistral-common encodes it separately, so it starts with SentencePiece's word-start piece);
# a system prompt joins the first user turn with a blank line, as mistral-common's v1 encoder does.
MISTRAL = CONTENT + (
    "{{ bos_token }}{% set ns = namespace(sys='') %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.sys = text(message) + '\n\n' %}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' + ns.sys + text(message) + ' [/INST]' }}{% set ns.sys = '' %}"
    "{% elif message['role'] == 'assistant' %}"
    "{% generation %}{{ ' ' + text(message) + eos_token }}{% endgeneration %}"
    "{% endif %}{% endfor %}"
)
# Llama-2 chat (Meta's reference encodes every exchange with BOS and EOS; LLaVA's conv_llama_2 agrees):
# <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nu1 [/INST] a1 </s><s>[INST] u2 [/INST] a2 </s>
LLAMA_2 = CONTENT + (
    "{% set ns = namespace(sys='') %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set ns.sys = '<<SYS>>\n' + text(message) + '\n<</SYS>>\n\n' %}"
    "{% elif message['role'] == 'user' %}{{ bos_token + '[INST] ' + ns.sys + text(message) + ' [/INST]' }}"
    "{% set ns.sys = '' %}"
    "{% elif message['role'] == 'assistant' %}"
    "{% generation %}{{ ' ' + text(message) + ' ' + eos_token }}{% endgeneration %}"
    "{% endif %}{% endfor %}"
)
# Vicuna v1 (LLaVA-1.5's conv_vicuna_v1, SeparatorStyle.TWO with sep " " and sep2 "</s>"):
# <s>SYSTEM USER: u1 ASSISTANT: a1</s>USER: u2 ASSISTANT: a2</s> - a space after the system prompt and
# after each question, none after an answer's </s>.
VICUNA_V1 = CONTENT + (
    "{{ bos_token }}{% set ns = namespace(sep=' ', sys='A chat between a curious user and an artificial "
    "intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user\\'s questions.') %}"
    "{% for message in messages %}{% if message['role'] == 'system' %}{% set ns.sys = text(message) %}"
    "{% endif %}{% endfor %}{{ ns.sys }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ ns.sep + 'USER: ' + text(message) + ' ASSISTANT:' }}{% set ns.sep = ' ' %}"
    "{% elif message['role'] == 'assistant' %}{% generation %}{{ ' ' + text(message) + eos_token }}{% endgeneration %}"
    "{% set ns.sep = '' %}"
    "{% endif %}{% endfor %}"
)
# LLaVA's "plain" (conv_llava_plain, its stage-1 captions): <s><image>caption\n, no roles. Two deliberate
# differences: the user turn is kept as written (LLaVA's preprocess_plain replaces it with <image>, which
# wiped out every question of the study this project grows out of; config.py refuses plain on question
# data instead), and EOS is written and trained, because a classification run whose last stage is plain
# is prompted with it and must stop (LLaVA only trains its projector under plain, never generates).
PLAIN = CONTENT + (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ text(message) }}"
    "{% elif message['role'] == 'assistant' %}{% generation %}{{ text(message) + '\n' + eos_token }}"
    "{% endgeneration %}{% endif %}{% endfor %}"
)

CHAT_TEMPLATES = {"tiny": TINY, "mistral": MISTRAL, "llama-2": LLAMA_2, "vicuna-v1": VICUNA_V1, "plain": PLAIN}
# Templates without roles, for image -> caption data only: a question under them loses its frame (config.py
# refuses them on question data, tasks/chat.py on a stage's own LLaVA JSON that holds questions).
CAPTION_TEMPLATES = ("plain",)


def chat_template(template_id: str) -> str:
    if template_id not in CHAT_TEMPLATES:
        raise one_of("chat template", template_id, CHAT_TEMPLATES)
    return CHAT_TEMPLATES[template_id]


def set_chat_template(tok, template_id: str | None) -> None:
    """Use template ``template_id`` (``prompt.chat_template``) instead of the tokenizer's own; None keeps it."""
    if template_id is not None:
        tok.chat_template = chat_template(template_id)


def with_chat_template(tokenizer_or_processor, template_id: str | None):
    """A tokenizer or processor that writes conversations with template ``template_id`` (None: the object as it
    is). A shallow copy - the vocabulary is shared, the original untouched - so one run's stages can each use
    their own template (``stages[i].template``) on one processor."""
    import copy

    if template_id is None:
        return tokenizer_or_processor
    text = chat_template(template_id)
    out = copy.copy(tokenizer_or_processor)
    if getattr(out, "tokenizer", None) is not None:        # a processor: its tokenizer writes the task's prompts
        out.tokenizer = copy.copy(out.tokenizer)
        out.tokenizer.chat_template = text
    out.chat_template = text
    return out


def template_name(text: str | None) -> str | None:
    """The registry id of a chat template's text (a saved tokenizer's), or None if it is not one of ours."""
    return next((k for k, v in CHAT_TEMPLATES.items() if v == text), None)
