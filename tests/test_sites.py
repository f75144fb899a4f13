"""Site dictionaries and the raw-data layer (pannet.sites) on tiny in-test exports."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest
import yaml

from pannet import cdm, sites

SITES = ("uppsala", "gothenburg", "boston")

UPPSALA_HEADER = (
    "personnummer;namn;kon;diagnosdatum;fjarrmetastas_datum;arftligt_syndrom;who_grad;"
    "ki67_procent;hormonproducerande;primartumor_mm;antal_levermetastaser;"
    "extraabdominella_metastaser;charlson;operationsdatum;operationstyp;clavien_dindo;"
    "dodsdatum;senaste_kontakt"
)
UPPSALA_ROWS = [
    # valid, resected, size 35 mm
    "811218-9876;Test Testsson;M;2010-03-01;2010-03-01;ingen;G2;4,5;nej;35;5;nej;1;"
    "2010-05-02;distal pankreatektomi;IIIa;;2015-01-01",
    # misspelt sex code, size with decimal comma, unknown size token
    "811218-9868;Prov Provsson;Kvinna;2012-01-01;saknas;ingen;G1;2;ja;12,5;saknas;ja;0;;;;"
    "2013-01-01;2013-01-01",
    # bad check digit, missing mandatory grade, bad date
    "811218-9860;Exempel Exempelsson;K;2012-13-01;;MEN1;-;;ja;-;3;nej;0;;;;;2014-01-01",
]
UPPSALA_TREAT = [
    "personnummer;behandling;linje;startdatum;slutdatum",
    "811218-9876;cytostatika;1;2011-01-01;2011-06-01",
    "811218-9876;somatostatinanlog;;2010-06-01;",
    "000000-0000;ablation;;2012-01-01;",
]


def _site_cfg(tmp_path, site="uppsala"):
    return {
        "dictionary": str(sites.PROJECT_ROOT / f"config/sites/{site}.yaml"),
        "data_dir": str(tmp_path / site),
    }


def _uppsala(
    tmp_path, rows=UPPSALA_ROWS, header=UPPSALA_HEADER, treat=UPPSALA_TREAT, encoding="utf-8"
):
    d = tmp_path / "uppsala"
    d.mkdir(exist_ok=True)
    (d / "patienter.csv").write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    (d / "behandlingar.csv").write_text("\n".join(treat) + "\n", encoding="utf-8")
    return _site_cfg(tmp_path)


@pytest.mark.parametrize("site", SITES)
def test_dictionaries_validate(site):
    d = sites.load_dictionary(sites.PROJECT_ROOT / f"config/sites/{site}.yaml")
    assert d["site"]["id"] == site
    specs = sites.column_specs(d)
    assert specs["type"].iloc[0] == "identifier"
    assert set(specs["cdm_column"].dropna()) <= set(cdm.PATIENT_COLUMNS) | set(
        cdm.TREATMENT_COLUMNS
    )


def test_bad_dictionary_names_file_and_key(tmp_path):
    d = yaml.safe_load((sites.PROJECT_ROOT / "config/sites/uppsala.yaml").read_text())
    d["patients"]["columns"]["sex"]["type"] = "category"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(sites.DictionaryError, match=r"bad.yaml.*patients\.columns\.sex"):
        sites.load_dictionary(p)
    d["patients"]["columns"]["sex"]["type"] = "code"
    d["patients"]["columns"]["tumour_volume"] = {"source": "kon", "type": "string"}
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(sites.DictionaryError, match="tumour_volume.*not a mappable CDM column"):
        sites.load_dictionary(p)


def test_personnummer():
    assert sites.valid_personnummer("811218-9876")
    assert not sites.valid_personnummer("811218-9870")  # wrong check digit
    assert not sites.valid_personnummer("811318-9876")  # month 13
    assert not sites.valid_personnummer("8112189876")
    assert sites.luhn_digit("811218987") == 6
    assert sites.personnummer_birth_date("811218-9876") == dt.date(1981, 12, 18)
    assert sites.personnummer_birth_date("120101+0004", 2025) == dt.date(1912, 1, 1)


def test_read_raw_strings_as_exported(tmp_path):
    cfg = _uppsala(tmp_path)
    raw = sites.read_raw("uppsala", cfg)
    p = raw["patients"]
    assert list(p["source_row"]) == [1, 2, 3]
    assert p.loc[1, "primartumor_mm"] == "12,5"  # not parsed
    assert p.loc[0, "clavien_dindo"] == "IIIa"
    assert p.attrs["file"].endswith("uppsala/patienter.csv")
    assert all(p[c].map(type).eq(str).all() for c in p.columns if c != "source_row")
    assert sites.raw_files(cfg) == sorted(
        [str(tmp_path / "uppsala/behandlingar.csv"), str(tmp_path / "uppsala/patienter.csv")]
    )


def test_to_cdm_maps_and_flags(tmp_path):
    cfg = _uppsala(tmp_path)
    d = sites.load_dictionary(cfg["dictionary"])
    pat, tre, issues = sites.to_cdm("uppsala", sites.read_raw("uppsala", cfg), d)
    assert list(pat.columns) == [*cdm.PATIENT_COLUMNS, "local_id"]
    for col, (dtype, _) in cdm.PATIENT_COLUMNS.items():
        assert str(pat[col].dtype) == dtype, col
    assert pat.loc[0, "primary_size_cm"] == 3.5
    assert pat.loc[1, "primary_size_cm"] == 1.25
    assert pd.isna(pat.loc[1, "liver_metastases_count"])
    assert pat.loc[0, "clavien_dindo"] == 3
    assert pat.loc[0, "resection_type"] == "distal_pancreatectomy"
    assert pat.loc[0, "birth_date"] == pd.Timestamp("1981-12-18")
    assert pat.loc[0, "sex"] == "Male" and pd.isna(pat.loc[1, "sex"])
    assert pat.loc[1, "extra_abdominal_metastases"] == True  # noqa: E712
    assert pat["site"].eq("uppsala").all() and pat["patient_key"].isna().all()
    got = set(zip(issues["source_row"], issues["column"], issues["rule"], strict=True))
    assert (2, "kon", "code_list") in got
    assert (3, "personnummer", "identifier") in got
    assert (3, "who_grad", "required") in got
    assert (3, "diagnosdatum", "date_format") in got
    assert issues.loc[issues["column"] == "kon", "value"].tolist() == ["Kvinna"]
    assert list(tre["treatment"].astype(object).fillna("NA")) == [
        "chemotherapy",
        "NA",
        "thermal_ablation",
    ]
    assert (2, "behandling", "code_list") in set(
        zip(issues["source_row"], issues["column"], issues["rule"], strict=True)
    )
    assert (3, "personnummer", "unknown_patient") in set(
        zip(issues["source_row"], issues["column"], issues["rule"], strict=True)
    )
    assert tre.loc[0, "line"] == 1 and tre.loc[0, "local_id"] == "811218-9876"
    assert str(tre["start_date"].dtype) == "datetime64[ns]"


def test_structural_errors(tmp_path):
    cfg = _uppsala(tmp_path)
    (tmp_path / "uppsala/behandlingar.csv").unlink()
    with pytest.raises(
        sites.StructuralError, match=r"site 'uppsala'.*behandlingar.csv.*does not exist.*Fix"
    ):
        sites.read_raw("uppsala", cfg)
    cfg = _uppsala(
        tmp_path,
        header=UPPSALA_HEADER.replace(";", ","),
        rows=[r.replace(";", ",") for r in UPPSALA_ROWS],
    )
    with pytest.raises(sites.StructuralError, match="delimiter is wrong"):
        sites.read_raw("uppsala", cfg)
    cfg = _uppsala(tmp_path, header=UPPSALA_HEADER.replace(";charlson", ""))
    with pytest.raises(sites.StructuralError, match="patienter.csv.*not parseable as CSV"):
        sites.read_raw("uppsala", cfg)
    cfg = _uppsala(tmp_path, header=UPPSALA_HEADER.replace("who_grad", "grad"))
    with pytest.raises(sites.StructuralError, match=r"patienter.csv', column 'who_grad'.*missing"):
        sites.read_raw("uppsala", cfg)
    rows = [UPPSALA_ROWS[0].replace("Test Testsson", "Åsa Öberg")]
    cfg = _uppsala(tmp_path, rows=rows, encoding="latin-1")
    with pytest.raises(sites.StructuralError, match="not valid utf-8.*line 2"):
        sites.read_raw("uppsala", cfg)


def _gothenburg(tmp_path, sheet_t="Behandlingar"):
    import openpyxl

    d = sites.load_dictionary(sites.PROJECT_ROOT / "config/sites/gothenburg.yaml")
    pcols = ["Personnummer", "Namn"] + [
        s.get("source") for s in d["patients"]["columns"].values() if "source" in s
    ]
    comps = list(d["patients"]["columns"]["charlson_index"]["components"])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Patienter"
    ws.append([c for c in pcols if c] + comps)
    vals = {
        "Personnummer": "811218-9876",
        "Namn": "A B",
        "Kön": "Kvinna",
        "Födelsedatum": dt.datetime(1981, 12, 18),
        "Diagnosdatum": dt.datetime(2005, 2, 3),
        "Datum fjärrmetastas": dt.datetime(2005, 2, 3),
        "Ärftligt syndrom": "Nej",
        "WHO-grad": "G2",
        "Ki-67 (%)": 3.5,
        "Hormonell funktion": "Icke-funktionell",
        "Primärtumör (cm)": 4.2,
        "Antal levermetastaser": 12,
        "Extraabdominell spridning": "Nej",
        "Senast kontrollerad": dt.datetime(2010, 1, 1),
    }
    row = [vals.get(c) for c in pcols if c]
    row += [
        "Ja" if c in ("Charlson Hjärtinfarkt", "Charlson Njursjukdom") else "Nej" for c in comps
    ]
    ws.append(row)
    wt = wb.create_sheet(sheet_t)
    wt.append(["Personnummer", "Behandling", "Linje", "Startdatum", "Slutdatum"])
    wt.append(["811218-9876", "Cytostatika", 1, dt.datetime(2005, 3, 1), None])
    (tmp_path / "gothenburg").mkdir()
    wb.save(tmp_path / "gothenburg/sahlgrenska_pannet.xlsx")
    return _site_cfg(tmp_path, "gothenburg"), d


def test_xlsx_dates_and_charlson(tmp_path):
    cfg, d = _gothenburg(tmp_path)
    raw = sites.read_raw("gothenburg", cfg)
    assert raw["patients"].loc[0, "Diagnosdatum"] == "2005-02-03"
    assert raw["patients"].loc[0, "Antal levermetastaser"] == "12"
    assert raw["patients"].loc[0, "Primärtumör (cm)"] == "4.2"
    pat, tre, issues = sites.to_cdm("gothenburg", raw, d)
    assert issues.empty, issues
    assert pat.loc[0, "charlson_index"] == 3  # MI 1 + renal 2
    assert pat.loc[0, "primary_size_cm"] == 4.2
    assert tre.loc[0, "start_date"] == pd.Timestamp("2005-03-01")


def test_xlsx_missing_sheet(tmp_path):
    cfg, _ = _gothenburg(tmp_path, sheet_t="Treatments")
    with pytest.raises(sites.StructuralError, match="sheet 'Behandlingar' is missing"):
        sites.read_raw("gothenburg", cfg)


def test_redcap_repeating_rows_and_checkboxes(tmp_path):
    d = sites.load_dictionary(sites.PROJECT_ROOT / "config/sites/boston.yaml")
    cols = [
        "record_id",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "mrn",
        "first_name",
        "last_name",
    ]
    for spec in [*d["patients"]["columns"].values(), *d["treatments"]["columns"].values()]:
        cols += ([spec["source"]] if "source" in spec else []) + list(spec.get("components", {}))
    base = dict.fromkeys(cols, "")
    p1 = {
        **base,
        "record_id": "1",
        "mrn": "BWH0000001",
        "sex": "2",
        "dob": "12/18/1951",
        "dx_date": "02/03/2008",
        "mets_date": "02/03/2008",
        "who_grade": "1",
        "functional": "0",
        "extra_abd_mets": "0",
        "last_fu_date": "01/01/2012",
        "syndrome___2": "1",
        **{f"comorb___{k}": "0" for k in range(1, 19)},
        "comorb___17": "1",
    }
    for k in range(1, 5):
        p1.setdefault(f"syndrome___{k}", "0")
        p1[f"syndrome___{k}"] = p1[f"syndrome___{k}"] or "0"
    p2 = {
        **p1,
        "record_id": "2",
        "mrn": "MRN12",
        "sex": "3",
        "syndrome___2": "0",
        "comorb___17": "0",
        "dx_date": "2008-02-03",
    }
    t1 = {
        **base,
        "record_id": "1",
        "redcap_repeat_instrument": "treatments",
        "redcap_repeat_instance": "1",
        "tx_type": "6",
        "tx_start": "03/04/2009",
    }
    (tmp_path / "boston").mkdir()
    pd.DataFrame([p1, t1, p2]).to_csv(tmp_path / "boston/PANNET_DATA_RAW.csv", index=False)
    shutil.copy(
        sites.PROJECT_ROOT / "resources/demo/boston/PANNET_DataDictionary.csv",
        tmp_path / "boston/PANNET_DataDictionary.csv",
    )
    raw = sites.read_raw("boston", _site_cfg(tmp_path, "boston"))
    assert list(raw["patients"]["source_row"]) == [1, 3]
    assert list(raw["treatments"]["source_row"]) == [2]
    pat, tre, issues = sites.to_cdm("boston", raw, d)
    assert (
        pat.loc[0, "hereditary_syndrome"] == "VHL" and pat.loc[1, "hereditary_syndrome"] == "none"
    )
    assert pat.loc[0, "charlson_index"] == 3 and pat.loc[1, "charlson_index"] == 0
    assert pat.loc[0, "birth_date"] == pd.Timestamp("1951-12-18")
    assert tre.loc[0, "treatment"] == "thermal_ablation" and tre.loc[0, "local_id"] == "BWH0000001"
    got = set(zip(issues["source_row"], issues["column"], issues["rule"], strict=True))
    assert got == {(3, "mrn", "identifier"), (3, "sex", "code_list"), (3, "dx_date", "date_format")}
