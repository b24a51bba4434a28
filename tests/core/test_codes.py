"""Card and certificate codes: random symbols in every position, a check symbol that catches typos."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.services import codes


def test_generated_codes_are_valid_and_every_position_takes_every_symbol():
    drawn = [codes.generate(16) for _ in range(3000)]
    assert all(len(code) == 17 and codes.is_valid(code) for code in drawn)
    for position in range(16):
        seen = Counter(code[position] for code in drawn)
        assert set(seen) == set(codes.ALPHABET), position
        # 3000 draws over 32 symbols: about 94 each; a stuck or biased bit would halve some.
        assert min(seen.values()) > 50, (position, seen)
    assert len(set(drawn)) == len(drawn)


@given(st.text(alphabet=codes.ALPHABET, min_size=16, max_size=16), st.data())
def test_the_check_symbol_catches_one_wrong_symbol_and_one_swap(payload, data):
    code = payload + codes.check_symbol(payload)
    assert codes.normalize(code.lower()) == code
    index = data.draw(st.integers(0, 15))
    other = data.draw(st.sampled_from([s for s in codes.ALPHABET if s != payload[index]]))
    typo = payload[:index] + other + payload[index + 1:] + code[-1]
    assert not codes.is_valid(typo)
    if index < 15 and payload[index] != payload[index + 1]:
        swapped = payload[:index] + payload[index + 1] + payload[index] + payload[index + 2:] + code[-1]
        assert not codes.is_valid(swapped)


@pytest.mark.parametrize("text", ["", "ABC", "0" * 18, "U" * 17])
def test_malformed_text_is_refused_before_any_lookup(text):
    with pytest.raises(codes.InvalidCode):
        codes.normalize(text)
