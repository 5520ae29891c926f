import numpy as np
import pytest
import torch

from mistral_vision.config import ModelConfig
from mistral_vision.infer.scorer import LabelScorer
from mistral_vision.models.backbones import build_model, get_backbone, load_tokenizer

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def reference_loglik(model, prompt, label):
    """Log-likelihood of ``label`` after ``prompt`` from one plain, unpadded forward pass."""
    ids = torch.tensor([prompt + label])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return sum(lp[len(prompt) - 1 + j, t].item() for j, t in enumerate(label))


def _tiny(bid="mistral-tiny", **model):
    """(char tokenizer, small random-init model in eval mode), seeded."""
    torch.manual_seed(0)
    spec = get_backbone(bid)
    tok = load_tokenizer(spec)
    shape = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64) | model
    return tok, build_model(spec, ModelConfig(backbone=bid, **shape), tok).eval()


@pytest.mark.parametrize("bid", ["mistral-tiny", "llama-tiny"])
def test_scores_equal_full_forward_log_likelihood(bid):
    # sliding window shorter than the prompts, so the cached path must respect it too
    tok, model = _tiny(bid, sliding_window=12)
    labels = [tok(name + "</s>", add_special_tokens=False)["input_ids"] for name in FASHION]
    rng = np.random.default_rng(0)
    prompts = [rng.integers(5, 90, int(n)).tolist() for n in (9, 20, 14)]    # ragged: left padding
    scores = LabelScorer(model, labels, tok.pad_token_id).score(prompts)
    assert scores.shape == (3, 10)
    for i, p in enumerate(prompts):
        for k, lab in enumerate(labels):
            assert scores[i, k].item() == pytest.approx(reference_loglik(model, p, lab), abs=2e-4)


def test_single_token_labels_need_no_second_pass():
    tok, model = _tiny(num_layers=1)
    labels = [[tok.convert_tokens_to_ids(str(d))] for d in range(10)]
    s = LabelScorer(model, labels, tok.pad_token_id).score([[5, 6, 7]])
    assert s[0, 3].item() == pytest.approx(reference_loglik(model, [5, 6, 7], labels[3]), abs=1e-5)


def test_eos_left_out_only_when_no_label_is_a_prefix_of_another():
    tok, model = _tiny()
    eos = tok.eos_token_id
    enc = lambda names: [tok(n, add_special_tokens=False)["input_ids"] + [eos] for n in names]  # noqa: E731
    digits, fashion, nested = enc("0123456789"), enc(FASHION), enc(["Shirt", "Shirts", "Coat"])
    prompt = [5, 6, 7, 8]
    # digits: one token each, decided before the EOS -> one forward pass, exact log P(digit | prompt)
    s = LabelScorer(model, digits, tok.pad_token_id, eos).score([prompt])
    assert s[0, 3].item() == pytest.approx(reference_loglik(model, prompt, digits[3][:-1]), abs=1e-5)
    assert LabelScorer(model, digits, tok.pad_token_id, eos).rest_in.shape[1] == 0
    # Fashion names are prefix-free too: every name scored in full, without the EOS
    s = LabelScorer(model, fashion, tok.pad_token_id, eos).score([prompt])
    for k, lab in enumerate(fashion):
        assert s[0, k].item() == pytest.approx(reference_loglik(model, prompt, lab[:-1]), abs=2e-4)
    # "Shirt" is a prefix of "Shirts": only the EOS tells them apart, so it is scored
    s = LabelScorer(model, nested, tok.pad_token_id, eos).score([prompt])
    for k, lab in enumerate(nested):
        assert s[0, k].item() == pytest.approx(reference_loglik(model, prompt, lab), abs=2e-4)
    # score_eos keeps it everywhere
    s = LabelScorer(model, digits, tok.pad_token_id, eos, score_eos=True).score([prompt])
    assert s[0, 3].item() == pytest.approx(reference_loglik(model, prompt, digits[3]), abs=1e-5)


@pytest.mark.parametrize("bid", ["mistral-tiny", "llama-tiny"])
def test_the_cached_label_pass_uses_the_installed_transformers_cache_argument(bid):
    """No FutureWarning (transformers 5.24 deprecates ``past_key_values=`` on forward): one leaked into
    every VQA evaluation."""
    import warnings

    tok, model = _tiny(bid)
    labels = [tok(name + "</s>", add_special_tokens=False)["input_ids"] for name in FASHION]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        scores = LabelScorer(model, labels, tok.pad_token_id).score([[5, 6, 7, 8]])
    assert scores[0, 0].item() == pytest.approx(reference_loglik(model, [5, 6, 7, 8], labels[0]), abs=2e-4)
