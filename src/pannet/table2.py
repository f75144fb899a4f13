"""Table 2: treatments for systemic disease in the matched groups.

Each treatment is a 0/1 indicator of ``results/matching/matched.parquet``
(:data:`pannet.cdm.TABLE2_TREATMENTS`); the groups are compared with the same rule as
Table 1 (:func:`pannet.contingency.compare_groups`: Pearson chi-square without
continuity correction, Fisher's exact test when an expected count is below 5).
"""

from __future__ import annotations

import pandas as pd

from pannet.cdm import TABLE2_TREATMENTS
from pannet.contingency import compare_groups, format_p

LABELS = {
    "first_line_chemotherapy": "Chemotherapy, first line",
    "second_line_chemotherapy": "Chemotherapy, second line",
    "third_line_chemotherapy": "Chemotherapy, third line",
    "interferon_alpha": "Interferon alpha",
    "somatostatin_analogue": "Somatostatin analogue",
    "liver_resection": "Liver resection",
    "thermal_hepatic_ablation": "Thermal hepatic ablation",
    "hepatic_artery_embolization": "Hepatic artery embolization",
    "prrt_177lu": "PRRT (177Lu)",
}
GROUPS = ("SG", "non-SG")


def _check(df: pd.DataFrame, cols, source: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: column(s) {missing} missing (rule: table2)")
    for c in cols:
        bad = df[c].isna() | ~df[c].isin([0, 1] if c != "group" else GROUPS)
        if bad.any():
            keys = df.loc[bad, "patient_key"].head(5).tolist() if "patient_key" in df else []
            raise ValueError(
                f"{source}: column {c!r} has {int(bad.sum())} value(s) outside "
                f"{'0/1' if c != 'group' else GROUPS}, e.g. patients {keys} (rule: table2)"
            )


def table2(
    matched: pd.DataFrame,
    treatments=TABLE2_TREATMENTS,
    rule: str = "auto",
    expected_below: float = 5.0,
    test_override: dict | None = None,
    source: str = "matched cohort",
) -> pd.DataFrame:
    """One row per treatment: counts and percentages per group, the test and its p.

    ``test_override`` (the ``tables.test_override`` config, shared with Table 1) maps a
    treatment to "chi2" or "fisher" regardless of ``rule``; ``test_rule`` then reads
    "override".

    Returns
    -------
    DataFrame
        ``variable, label, n_SG, pct_SG, n_nonSG, pct_nonSG, total_SG, total_nonSG,
        test, test_rule, statistic, df, p, p_text, expected_min``.
    """
    _check(matched, ["group", *treatments], source)
    total = {g: int((matched["group"] == g).sum()) for g in GROUPS}
    rows = []
    for t in treatments:
        yes = {g: int(matched.loc[matched["group"] == g, t].sum()) for g in GROUPS}
        table = [[yes[g] for g in GROUPS], [total[g] - yes[g] for g in GROUPS]]
        forced = (test_override or {}).get(t)
        res = compare_groups(table, rule=forced or rule, expected_below=expected_below)
        rows.append(
            {
                "variable": t,
                "label": LABELS.get(t, t),
                "n_SG": yes["SG"],
                "pct_SG": 100 * yes["SG"] / total["SG"] if total["SG"] else float("nan"),
                "n_nonSG": yes["non-SG"],
                "pct_nonSG": 100 * yes["non-SG"] / total["non-SG"]
                if total["non-SG"]
                else float("nan"),
                "total_SG": total["SG"],
                "total_nonSG": total["non-SG"],
                "test": res["test"],
                "test_rule": "override" if forced else rule,
                "statistic": res["statistic"],
                "df": int(res["df"]),
                "p": res["p"],
                "p_text": format_p(res["p"]),
                "expected_min": res["expected_min"],
            }
        )
    return pd.DataFrame(rows)
