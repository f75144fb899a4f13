# Stage: cohort - union of sites, cross-site duplicates, eligibility (STROBE flow and a
# ledger of every raw row's fate), then the analysis dataset (one row per patient).


rule merge_cohort:
    input:
        patients=expand("results/harmonised/{site}/patients.parquet", site=SITES),
        treatments=expand("results/harmonised/{site}/treatments.parquet", site=SITES),
        quarantine=expand("results/quarantine/{site}.parquet", site=SITES),
        modules=pannet_modules("pannet.cohort"),
    output:
        cohort="results/cohort/cohort.parquet",
        treatments="results/cohort/treatments.parquet",
        attrition=report(
            "results/cohort/attrition.parquet",
            caption="../report/attrition.rst",
            category="Cohort",
        ),
        ledger="results/cohort/ledger.parquet",
    log:
        "logs/merge_cohort/merge_cohort.log",
    params:
        # config order, not sorted: it breaks ties of the duplicate merge rule
        sites=list(config["sites"]),
        eligibility=config["eligibility"],
    script:
        "../scripts/merge_cohort.py"


rule flow_diagram:
    input:
        attrition="results/cohort/attrition.parquet",
        modules=pannet_modules("pannet.cohort"),
    output:
        png=report(
            "results/cohort/flow_diagram.png",
            caption="../report/flow_diagram.rst",
            category="Cohort",
        ),
    log:
        "logs/flow_diagram/flow_diagram.log",
    params:
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/flow_diagram.py"


rule derive_analysis:
    input:
        cohort="results/cohort/cohort.parquet",
        treatments="results/cohort/treatments.parquet",
        modules=pannet_modules("pannet.derive"),
    output:
        analysis="results/cohort/analysis.parquet",
    log:
        "logs/derive_analysis/derive_analysis.log",
    params:
        analysis=config["analysis"],
    script:
        "../scripts/derive_analysis.py"


ALL_TARGETS.extend(
    [
        "results/cohort/cohort.parquet",
        "results/cohort/attrition.parquet",
        "results/cohort/ledger.parquet",
        "results/cohort/flow_diagram.png",
        "results/cohort/analysis.parquet",
    ]
)
