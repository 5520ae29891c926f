import pytest

from mistral_vision.errors import UserError
from mistral_vision.data.sqa import (LETTERS, SINGLE_PRED_PROMPT, check_options, expects_letter, parse_answer,
                                     parse_options, truth_letter)

# Human turns exactly as LLaVA's scripts/convert_sqa_to_llava.py writes them (problem 7 of the
# ScienceQA test split, run through build_prompt_chatbot): the image placeholder comes LAST.
QCM_LEA = ("Which of these states is farthest north?\nContext: N/A\n"
           "Options: (A) West Virginia (B) Louisiana (C) Arizona (D) Oklahoma\n<image>")
CQM_A = ("Context: N/A\nQuestion: Which of these states is farthest north?\n"
         "Options: (A) West Virginia (B) Louisiana (C) Arizona (D) Oklahoma\n<image>")
# ...and the prompt model_vqa_science.py --single-pred-prompt builds from it (placeholder moved first).
SINGLE_PRED = ("<image>\nContext: N/A\nQuestion: Which of these states is farthest north?\n"
               "Options: (A) West Virginia (B) Louisiana (C) Arizona (D) Oklahoma\n" + SINGLE_PRED_PROMPT)
STATES = [("A", "West Virginia"), ("B", "Louisiana"), ("C", "Arizona"), ("D", "Oklahoma")]


def test_letters_are_llavas():
    assert LETTERS == "ABCDE"


@pytest.mark.parametrize("question", [QCM_LEA, CQM_A, SINGLE_PRED])
def test_parse_options_on_llava_prompts(question):
    assert parse_options(question) == STATES


def test_parse_options_one_per_line_and_context_with_parentheses():
    q = "Context: see figure (a) and (A) above.\nWhich one?\n(A) the cat\n(B) the dog\n(C) a 2 (two) eels\n"
    assert parse_options(q) == [("A", "the cat"), ("B", "the dog"), ("C", "a 2 (two) eels")]
    assert parse_options("Options: (A) yes (B) no (A) again") == [("A", "yes"), ("B", "no (A) again")]


@pytest.mark.parametrize("question", ["What digit is this?", "Is it (A)?", "Options: (B) x (C) y", "(A) only one"])
def test_parse_options_none(question):
    assert parse_options(question) == []


def test_expects_letter():
    assert expects_letter(QCM_LEA) and expects_letter(SINGLE_PRED)
    assert expects_letter("Pick one.\n" + SINGLE_PRED_PROMPT)
    assert not expects_letter("What digit is this?")


def test_check_options():
    check_options(SINGLE_PRED, 3, "7")
    check_options("What digit is this?", 3, "7")
    with pytest.raises(UserError, match=r"""sample 3 \(id "7"\): asks for an option's letter but has no options like '\(A\) …'"""):
        check_options("Which is north?\n" + SINGLE_PRED_PROMPT, 3, "7")


@pytest.mark.parametrize("reply, parsed", [
    ("B", "B"),                                    # 1. the exact letter
    ("  B\n", "B"),                                # model_vqa_science strips replies first
    ("b", "FAILED"),                               #    case-sensitive
    ("F", "FAILED"),                               #    only LLaVA's five letters
    ("B. Louisiana", "B"),                         # 2. letter, dot, space
    ("B.", "FAILED"),                              #    needs the space after the dot
    ("B.Louisiana", "FAILED"),
    ("B) Louisiana", "FAILED"),
    ("The answer is C.", "C"),                     # 3. one "The answer is X."
    ("Maps have four cardinal directions.\nNorth is up. The answer is A.", "A"),   # QCM-LEA reply
    ("The answer is F.", "F"),                     #    any capital: scored wrong later, not FAILED
    ("The answer is Blue.", "B"),                  #    unescaped "." matches any character
    ("The answer is B", "FAILED"),                 #    ...but one must follow the letter
    ("The answer is A. No wait, The answer is B.", "FAILED"),   # two matches
    ("the answer is B.", "FAILED"),
    ("Louisiana", "FAILED"),                       # 4. nothing
    ("", "FAILED"),
    ("ABCDE", "FAILED"),                           # not a substring test
])
def test_parse_answer_mirrors_llava(reply, parsed):
    assert parse_answer(reply, LETTERS) == parsed


def test_parse_answer_with_fewer_letters():
    assert parse_answer("E", "ABCD") == "FAILED"
    assert parse_answer("E. x", "ABCD") == "FAILED"
    assert parse_answer("D. x", "ABCD") == "D"


@pytest.mark.parametrize("answer, letter", [
    ("B", "B"),
    ("B. Louisiana", "B"),
    ("B.", "B"),
    ("The answer is A.", "A"),                                                       # CQM-A
    ("Maps have four cardinal directions.\nNorth is up. To find the answer, look at the compass rose. "
     "The answer is A.", "A"),                                                       # QCM-LEA
    ("An example: The answer is B. Here, the answer is C. The answer is D.", "D"),   # the last one wins
    ("LECTURE: Maps have four cardinal directions.\nSOLUTION: Look at the compass rose.\n###\nANSWER: C.", "C"),  # LEPA
    ("The answer is F.", None),
    ("Louisiana", None),
    ("b", None),
    ("", None),
])
def test_truth_letter(answer, letter):
    assert truth_letter(answer, LETTERS) == letter
