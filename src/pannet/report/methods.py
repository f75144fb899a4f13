"""The methods paragraph, generated from the configuration the run actually used.

Every statement is filled from a config value (or, for the definitions fixed in code,
from the common data model's own description), so the text cannot disagree with what
ran: change the caliper and the paragraph changes with it.
"""

from __future__ import annotations

from collections.abc import Mapping

CONF_TYPE = {
    "plain": "plain (linear, Greenwood) intervals",
    "log": "log-transformed intervals",
    "log-log": "log(-log)-transformed intervals",
}
ORDER = {
    "largest": "treated patients in decreasing order of the distance",
    "smallest": "treated patients in increasing order of the distance",
    "random": "treated patients in random order",
    "data": "treated patients in data order",
}
ENDPOINT_NAMES = {"os": "overall survival", "pfs": "progression-free survival"}
TEST_RULE = {
    "auto": "Pearson's chi-square test without continuity correction, or Fisher's exact test "
    "when an expected count was below {below}",
    "chi2": "Pearson's chi-square test without continuity correction",
    "fisher": "Fisher's exact test",
}


def _join(items) -> str:
    items = [str(i).replace("_", " ") for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def methods_paragraphs(config: Mapping) -> list[str]:
    """Methods text (a list of paragraphs) from the validated config.

    Parameters
    ----------
    config : mapping
        The workflow config after validation (defaults filled).
    """
    from pannet.cdm import ANALYSIS_COLUMNS

    elig = config.get("eligibility") or {}
    an = config.get("analysis") or {}
    m = config.get("matching") or {}
    tb = config.get("tables") or {}
    sv = config.get("survival") or {}
    bs = config.get("bootstrap") or {}
    paras = []
    if elig:
        paras.append(
            "Patients were eligible with distant metastatic disease"
            f"{' (required)' if elig.get('require_distant_metastases', True) else ''}, WHO grade "
            f"{_join(elig.get('allowed_grades', []))}, without {_join(elig.get('excluded_syndromes', []))}, "
            f"with baseline between {elig.get('baseline_start')} and {elig.get('baseline_end')}."
        )
    tz = an.get("time_zero") or ANALYSIS_COLUMNS["time_zero"][1]
    pfs = an.get("progression_rule") or ANALYSIS_COLUMNS["pfs_event"][1]
    text = f"Time zero: {tz}. Progression-free survival event: {pfs}"
    if "pfs_grace_days" in an:
        text += f" (grace period analysis.pfs_grace_days = {an['pfs_grace_days']} days)"
    text += f". Time in years = days / {an.get('days_per_year', 365.25)}."
    paras.append(text)
    if m:
        dist = (
            "the logit of the propensity score"
            if m.get("distance") == "logit"
            else "the propensity score"
        )
        cal = m.get("caliper")
        cal_txt = (
            "no caliper"
            if cal is None
            else f"a caliper of {cal}"
            + (
                " standard deviations of the distance"
                if m.get("std_caliper", True)
                else " on the distance scale"
            )
        )
        paras.append(
            "The propensity score was estimated by unpenalised logistic regression of surgery on "
            f"{_join(m.get('covariates', []))} (categorical, one-hot with a reference level; 'N/A' its own "
            f"level). Patients were matched {m.get('ratio', 1)}:1 by greedy nearest-neighbour matching "
            f"{'with' if m.get('replace') else 'without'} replacement on {dist}, with {cal_txt}, "
            f"{ORDER.get(m.get('order', 'largest'), m.get('order'))}."
        )
    if tb:
        rule = TEST_RULE.get(tb.get("test_rule", "auto"), str(tb.get("test_rule")))
        paras.append(
            "Groups were compared with "
            + rule.format(below=tb.get("fisher_expected_below", 5))
            + "; balance by the per-level standardized mean difference (pooled SD), "
            f"|SMD| x 100 above {tb.get('smd_flag', 10)} flagged."
        )
    if sv:
        horizons = sv.get("horizons") or {}
        tau = sv.get("rmst_tau") or {}
        paras.append(
            f"Survival was estimated by Kaplan-Meier in the populations {_join(sv.get('populations', []))} "
            f"for the endpoints {_join(sv.get('endpoints', []))}: medians and quartiles as R "
            "quantile.survfit, "
            + _join(f"{v}-year survival ({k})" for k, v in horizons.items())
            + f" with {int(round(100 * sv.get('conf_level', 0.95)))} % "
            f"{CONF_TYPE.get(sv.get('conf_type', 'plain'), sv.get('conf_type'))}; groups were compared by the "
            f"log-rank test and Cox regression ({sv.get('ties', 'efron')} ties; robust SE clustered on the "
            "matched pair in the matched cohort) with the E-value of the hazard ratio; restricted mean "
            "survival time to " + _join(f"{v} years ({k})" for k, v in tau.items()) + "."
        )
    if bs:
        scheme = {
            "pairs": "matched pairs",
            "full": "the whole cohort (propensity model refitted and patients re-matched)",
        }
        paras.append(
            f"Bootstrap: {bs.get('replicates')} replicates resampling "
            f"{scheme.get(bs.get('scheme', 'pairs'), bs.get('scheme'))} (seed {bs.get('seed')}), "
            f"{_join(ENDPOINT_NAMES.get(e, e) for e in [bs.get('endpoint', 'os')])}; percentile and "
            f"bias-corrected accelerated (BCa) {int(round(100 * bs.get('conf_level', 0.95)))} % "
            "intervals."
        )
    return paras
