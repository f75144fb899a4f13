"""Pseudonymisation and harmonisation to the CDM (no identifier past harmonise)."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from pannet import cdm
from pannet.harmonise import harmonise_tables, issues_table
from pannet.pseudonym import (
    DEMO_KEY,
    PseudonymKeyError,
    normalise_identifier,
    pseudonymise,
    resolve_key,
)

KEY = b"a-test-key-of-sufficient-length"


def test_pseudonym_is_hmac_sha256_of_the_normalised_identifier():
    got = pseudonymise(
        pd.Series(["19121212-1212"]), kind="personnummer", site="gothenburg", key=KEY
    )
    want = hmac.new(KEY, b"personnummer:1212121212", hashlib.sha256).hexdigest()
    assert got.iloc[0] == want
    assert len(want) == 64


def test_same_personnummer_same_pseudonym_at_two_sites_whatever_the_format():
    a = pseudonymise(pd.Series(["121212-1212"]), kind="personnummer", site="uppsala", key=KEY)
    b = pseudonymise(
        pd.Series([" 19121212-1212 "]), kind="personnummer", site="gothenburg", key=KEY
    )
    c = pseudonymise(pd.Series(["1212121212"]), kind="personnummer", site="gothenburg", key=KEY)
    assert a.iloc[0] == b.iloc[0] == c.iloc[0]


def test_mrn_namespace_includes_the_site_and_missing_stays_missing():
    assert normalise_identifier(" bwh 0001234", "mrn", "boston") == "mrn:boston:BWH0001234"
    s = pseudonymise(pd.Series(["BWH0001234", None, ""]), kind="mrn", site="boston", key=KEY)
    t = pseudonymise(pd.Series(["BWH0001234"]), kind="mrn", site="other", key=KEY)
    assert s.iloc[0] != t.iloc[0]
    assert s.iloc[1:].isna().all()


def test_different_key_different_pseudonym():
    s = pd.Series(["121212-1212"])
    assert (
        pseudonymise(s, kind="personnummer", site="u", key=KEY).iloc[0]
        != pseudonymise(s, kind="personnummer", site="u", key=b"another-key-0123456789").iloc[0]
    )


def test_key_from_environment_wins(monkeypatch):
    monkeypatch.setenv("PANNET_TEST_KEY", "environment-key-0123456789")
    cfg = {"key_env": "PANNET_TEST_KEY", "key_file": None, "demo_key": True}
    assert resolve_key(cfg, synthetic=True) == b"environment-key-0123456789"


def test_key_file_outside_the_project(monkeypatch, tmp_path, root):
    monkeypatch.delenv("PANNET_TEST_KEY", raising=False)
    f = tmp_path / "key.txt"
    f.write_text("file-key-0123456789abcdef\n")
    cfg = {"key_env": "PANNET_TEST_KEY", "key_file": str(f), "demo_key": False}
    assert resolve_key(cfg, synthetic=False, project_root=root) == b"file-key-0123456789abcdef"
    inside = {
        "key_env": "PANNET_TEST_KEY",
        "key_file": str(root / "config" / "config.yaml"),
        "demo_key": False,
    }
    with pytest.raises(PseudonymKeyError, match="inside the project"):
        resolve_key(inside, synthetic=False, project_root=root)


def test_demo_key_only_on_synthetic_data(monkeypatch):
    monkeypatch.delenv("PANNET_TEST_KEY", raising=False)
    cfg = {"key_env": "PANNET_TEST_KEY", "key_file": None, "demo_key": True}
    assert resolve_key(cfg, synthetic=True) == DEMO_KEY.encode()
    with pytest.raises(PseudonymKeyError, match="refused on real data"):
        resolve_key(cfg, synthetic=False)
    with pytest.raises(PseudonymKeyError, match="set the environment variable PANNET_TEST_KEY"):
        resolve_key({**cfg, "demo_key": False}, synthetic=True)


def test_short_key_refused_and_never_echoed(monkeypatch):
    monkeypatch.setenv("PANNET_TEST_KEY", "short-secret")
    with pytest.raises(PseudonymKeyError) as err:
        resolve_key({"key_env": "PANNET_TEST_KEY"}, synthetic=True)
    assert "short-secret" not in str(err.value)


def _cdm_frames():
    p = pd.DataFrame(
        {
            "source_row": [1, 2],
            "local_id": ["121212-1212", "19500101-0008"],
            "site": "uppsala",
            "birth_date": pd.to_datetime(["1950-01-01", "1960-06-15"]),
            "diagnosis_date": pd.to_datetime(["2000-01-01", pd.NaT]),
            "sex": ["Female", "Male"],
        }
    )
    t = pd.DataFrame(
        {
            "source_row": [1, 2],
            "local_id": ["121212-1212", None],
            "site": "uppsala",
            "treatment": ["chemotherapy", "prrt"],
            "line": pd.array([1, pd.NA], dtype="Int64"),
            "start_date": pd.to_datetime(["2001-01-01", "2002-01-01"]),
        }
    )
    return p, t


def test_harmonised_tables_have_exactly_the_cdm_columns_and_no_birth_date():
    p, t = _cdm_frames()
    hp, ht = harmonise_tables("uppsala", p, t, kind="personnummer", key=KEY)
    assert list(hp.columns) == list(cdm.HARMONISED_PATIENT_COLUMNS)
    assert list(ht.columns) == list(cdm.HARMONISED_TREATMENT_COLUMNS)
    assert "birth_date" not in hp and "local_id" not in hp and "local_id" not in ht
    # 1950-01-01 -> 2000-01-01 is 18262 days; missing diagnosis -> NA
    assert hp["age_at_diagnosis_days"].iloc[0] == 18262
    assert pd.isna(hp["age_at_diagnosis_days"].iloc[1])
    assert ht["patient_key"].iloc[0] == hp["patient_key"].iloc[0]
    assert pd.isna(ht["patient_key"].iloc[1])
    for col, (dtype, _) in cdm.HARMONISED_PATIENT_COLUMNS.items():
        assert str(hp[col].dtype) == dtype, col


def test_issue_values_of_personal_columns_are_redacted():
    dictionary = {
        "identifier": {"column": "personnummer"},
        "patients": {
            "key": "personnummer",
            "file": "patients",
            "columns": {"birth_date": {"source": "fodd"}},
        },
        "treatments": {"key": "personnummer", "file": "treatments"},
        "personal_columns": ["namn"],
        "files": {"patients": {"path": "p.csv"}, "treatments": {"path": "t.csv"}},
    }
    issues = pd.DataFrame(
        {
            "site": "uppsala",
            "file": ["d/p.csv", "d/p.csv", "d/p.csv", "d/t.csv"],
            "source_row": [1, 1, 2, 1],
            "column": ["personnummer", "kon", "fodd", "personnummer"],
            "cdm_column": ["local_id", "sex", "birth_date", "local_id"],
            "value": ["121212-1213", "X", "1950-13-01", "121212-1212"],
            "rule": ["identifier", "code_list", "date_format", "unknown_patient"],
            "message": "m",
        }
    )
    q = issues_table(issues, dictionary)
    assert list(q["value"]) == ["<redacted>", "X", "<redacted>", "<redacted>"]
    assert list(q["table"]) == ["patients", "patients", "patients", "treatments"]


def test_personnummer_century_from_the_diagnosis_date():
    from pannet.harmonise import personnummer_birth_dates
    from pannet.sites import luhn_digit

    pnr = "131104-901" + str(luhn_digit("131104901"))
    got = personnummer_birth_dates(
        pd.Series([pnr, pnr, pnr]), pd.to_datetime(pd.Series(["1997-05-16", "2014-01-01", None]))
    )
    # diagnosed 1997: born 1913 (the '-' separator alone would say 2013)
    assert got.iloc[0] == pd.Timestamp("1913-11-04")
    assert got.iloc[1] == pd.Timestamp("2013-11-04")
    assert got.iloc[2] == pd.Timestamp("2013-11-04")  # no diagnosis date: separator rule
