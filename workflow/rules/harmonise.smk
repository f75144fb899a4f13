# Stage: harmonise - each site's export to the common data model (pannet.cdm), with the
# local identifier replaced by its keyed pseudonym and the birth date by
# age_at_diagnosis_days. No personnummer, MRN, name or birth date goes past this rule.


rule harmonise:
    input:
        raw=site_raw_files,
        dictionary=lambda wc: config["sites"][wc.site]["dictionary"],
        # Harmonise only an export whose structure validate_raw accepted (one message
        # for a structural failure, not one per rule).
        raw_results="results/validation/{site}.raw.parquet",
        modules=pannet_modules("pannet.harmonise", "pannet.sites"),
    output:
        patients="results/harmonised/{site}/patients.parquet",
        treatments="results/harmonised/{site}/treatments.parquet",
        issues="results/harmonised/{site}/issues.parquet",
    log:
        "logs/harmonise/{site}.log",
    params:
        site_cfg=lambda wc: config["sites"][wc.site],
        pseudonymisation=config["pseudonymisation"],
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/harmonise.py"


ALL_TARGETS.extend(
    expand(
        "results/harmonised/{site}/{table}.parquet",
        site=SITES,
        table=["patients", "treatments"],
    )
)
