from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiguillage import nir

VALIDE = "275013155512368"


def test_valid_nir_is_normalised():
    assert nir.valider("2 75 01 31 555 123 68") == VALIDE


def test_wrong_key_is_refused_with_its_own_code():
    with pytest.raises(nir.NirInvalide) as exc:
        nir.valider(VALIDE[:-2] + "00")
    assert exc.value.code == "nir-cle-invalide"
    assert VALIDE not in str(exc.value)


@pytest.mark.parametrize("dep,equiv", [("2A", "19"), ("2B", "18")])
def test_corsica_key_counts_2a_as_19_and_2b_as_18(dep, equiv):
    corps = f"18112{dep}004123"
    cle = 97 - int(corps.replace(dep, equiv)) % 97
    assert nir.valider(f"{corps}{cle:02d}") == f"{corps}{cle:02d}"


@pytest.mark.parametrize("bad", ["", "123", "575013155512368", "27501315551236", "2750131555123680", "27501AB5551236X"])
def test_malformed_nir_is_refused(bad):
    with pytest.raises(nir.NirInvalide):
        nir.valider(bad)


def test_pseudonym_is_keyed_and_stable():
    a = nir.pseudonymiser(VALIDE, b"k1")
    assert a == nir.pseudonymiser(VALIDE, b"k1")
    assert a != nir.pseudonymiser(VALIDE, b"k2")
    assert len(a) == 64 and VALIDE not in a


@given(st.from_regex(r"[12][0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[1-8][0-9]|2A|2B)[0-9]{6}", fullmatch=True))
def test_every_body_completed_with_its_key_is_valid(corps):
    assert nir.valider(nir.avec_cle(corps)) == nir.avec_cle(corps)


@given(st.text(max_size=30))
def test_arbitrary_text_is_valid_or_a_typed_error(text):
    try:
        nir.valider(text)
    except nir.NirInvalide:
        pass
