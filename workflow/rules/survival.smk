# Stage: survival - sensitivity population, KM / log-rank / Cox per population x endpoint,
# the immortal-time contrast, Table 2, surgical outcomes, Kaplan-Meier figures.
SURV = config["survival"]
POPULATION_FILES = {
    "all": "results/cohort/analysis.parquet",
    "matched": "results/matching/matched.parquet",
    "sensitivity": "results/sensitivity/cohort.parquet",
}
ENDPOINT_NAMES = {"os": "Overall survival", "pfs": "Progression-free survival"}
POPULATION_NAMES = {
    "all": "Before matching",
    "matched": "After matching",
    "sensitivity": "Matched, without liver resection or ablation",
}
# figure name -> panels (population, endpoint); a figure is drawn when all its
# populations and endpoints are configured
KM_FIGURES = {
    "figure2_os": [("all", "os"), ("matched", "os")],
    "figure_pfs": [("all", "pfs"), ("matched", "pfs")],
    "figure_sensitivity": [("sensitivity", "os"), ("sensitivity", "pfs")],
}
KM_FIGURES = {
    name: panels
    for name, panels in KM_FIGURES.items()
    if all(p in SURV["populations"] and e in SURV["endpoints"] for p, e in panels)
}
SYNTHETIC_NOTE = (
    "SYNTHETIC DEMO DATA - not the study's patients. "
    if config["study"]["synthetic"]
    else ""
)


wildcard_constraints:
    population="|".join(POPULATION_FILES),
    endpoint="os|pfs",
    figure="|".join(KM_FIGURES) if KM_FIGURES else "none",


rule sensitivity_exclusion:
    input:
        matched="results/matching/matched.parquet",
        analysis="results/cohort/analysis.parquet",
        modules=pannet_modules("pannet.sensitivity"),
    output:
        "results/sensitivity/cohort.parquet",
    log:
        "logs/sensitivity_exclusion/sensitivity_exclusion.log",
    params:
        rematch=SURV["sensitivity_rematch"],
        matching=config["matching"],
        seed=config["study"]["seed"],
    script:
        "../scripts/sensitivity_exclusion.py"


rule survival:
    input:
        cohort=lambda w: POPULATION_FILES[w.population],
        modules=pannet_modules("pannet.survival"),
    output:
        summary=report(
            "results/survival/{population}_{endpoint}_summary.parquet",
            caption="../report/survival_summary.rst",
            category="Survival",
            subcategory="{population}",
        ),
        steps="results/survival/{population}_{endpoint}_steps.parquet",
        tests=report(
            "results/survival/{population}_{endpoint}_tests.parquet",
            caption="../report/survival_tests.rst",
            category="Survival",
            subcategory="{population}",
        ),
    log:
        "logs/survival/{population}_{endpoint}.log",
    params:
        survival=SURV,
    script:
        "../scripts/survival.py"


rule immortal_time:
    input:
        analysis="results/cohort/analysis.parquet",
        matched="results/matching/matched.parquet",
        modules=pannet_modules("pannet.survival"),
    output:
        report(
            "results/survival/immortal_time.parquet",
            caption="../report/immortal_time.rst",
            category="Survival",
        ),
    log:
        "logs/immortal_time/immortal_time.log",
    params:
        survival=SURV,
    script:
        "../scripts/immortal_time.py"


rule table2:
    input:
        matched="results/matching/matched.parquet",
        modules=pannet_modules("pannet.table2"),
    output:
        report(
            "results/tables/table2.parquet",
            caption="../report/table2.rst",
            category="Tables",
        ),
    log:
        "logs/table2/table2.log",
    params:
        tables=config["tables"],
    script:
        "../scripts/table2.py"


rule surgical_outcomes:
    input:
        analysis="results/cohort/analysis.parquet",
        matched="results/matching/matched.parquet",
        modules=pannet_modules("pannet.surgery"),
    output:
        report(
            "results/tables/surgery.parquet",
            caption="../report/surgery.rst",
            category="Tables",
        ),
    log:
        "logs/surgical_outcomes/surgical_outcomes.log",
    params:
        tables=config["tables"],
    script:
        "../scripts/surgical_outcomes.py"


rule km_figure:
    input:
        steps=lambda w: [
            f"results/survival/{p}_{e}_steps.parquet" for p, e in KM_FIGURES[w.figure]
        ],
        tests=lambda w: [
            f"results/survival/{p}_{e}_tests.parquet" for p, e in KM_FIGURES[w.figure]
        ],
        modules=pannet_modules("pannet.figures"),
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/km_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "logs/km_figure/{figure}.log",
    params:
        titles=lambda w: [
            f"{chr(65 + i)}  {POPULATION_NAMES[p]} - {ENDPOINT_NAMES[e]}"
            for i, (p, e) in enumerate(KM_FIGURES[w.figure])
        ],
        figure=SURV["figure"],
        suptitle=None,
        footnote=lambda w: (
            f"{SYNTHETIC_NOTE}Shaded: pointwise {SURV['conf_level']:.0%} CI "
            f"({SURV['conf_type']}); | censored."
        ),
    script:
        "../scripts/km_figure.py"


ALL_TARGETS.extend(
    [
        *(
            f"results/survival/{p}_{e}_{part}.parquet"
            for p in SURV["populations"]
            for e in SURV["endpoints"]
            for part in ("summary", "steps", "tests")
        ),
        "results/survival/immortal_time.parquet",
        "results/tables/table2.parquet",
        "results/tables/surgery.parquet",
        *(f"results/figures/{f}.{ext}" for f in KM_FIGURES for ext in ("png", "pdf")),
    ]
)
