# Stage: validate - great-expectations suites on each site's raw export (built from its
# data dictionary) and on its harmonised tables (one suite for every site), the
# quarantine of rows that break a row-level rule, and an offline HTML summary.
# great_expectations is imported only here (about 3.5 s a process): one job per dataset.


wildcard_constraints:
    site="[a-z][a-z0-9_]*",


rule validate_raw:
    input:
        raw=site_raw_files,
        dictionary=lambda wc: config["sites"][wc.site]["dictionary"],
        modules=pannet_modules("pannet.validation", "pannet.sites"),
    output:
        results="results/validation/{site}.raw.parquet",
        html=report(
            "results/validation/{site}.raw.html",
            caption="../report/validation.rst",
            category="Validation",
            subcategory="{site}",
        ),
    log:
        "logs/validate_raw/{site}.log",
    params:
        site_cfg=lambda wc: config["sites"][wc.site],
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/validate_raw.py"


rule validate_cdm:
    input:
        patients="results/harmonised/{site}/patients.parquet",
        treatments="results/harmonised/{site}/treatments.parquet",
        issues="results/harmonised/{site}/issues.parquet",
        raw_results="results/validation/{site}.raw.parquet",
        dictionary=lambda wc: config["sites"][wc.site]["dictionary"],
        modules=pannet_modules("pannet.validation", "pannet.sites"),
    output:
        results="results/validation/{site}.cdm.parquet",
        html=report(
            "results/validation/{site}.cdm.html",
            caption="../report/validation.rst",
            category="Validation",
            subcategory="{site}",
        ),
        quarantine="results/quarantine/{site}.parquet",
    log:
        "logs/validate_cdm/{site}.log",
    params:
        site_cfg=lambda wc: config["sites"][wc.site],
        validation=config["validation"],
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/validate_cdm.py"


ALL_TARGETS.extend(
    expand(
        "results/validation/{site}.{stage}.{ext}",
        site=SITES,
        stage=["raw", "cdm"],
        ext=["parquet", "html"],
    )
    + expand("results/quarantine/{site}.parquet", site=SITES)
)
