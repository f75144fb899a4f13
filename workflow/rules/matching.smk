# Stage: matching - propensity score, 1:1 caliper matching, balance, Table 1.
from pannet.cdm import TABLE1_LEVELS


rule propensity:
    input:
        analysis="results/cohort/analysis.parquet",
        modules=pannet_modules("pannet.matching"),
    output:
        coefficients="results/matching/propensity.parquet",
        scores="results/matching/scores.parquet",
    log:
        "logs/propensity/propensity.log",
    params:
        matching=config["matching"],
    script:
        "../scripts/propensity.py"


rule match:
    input:
        analysis="results/cohort/analysis.parquet",
        scores=rules.propensity.output.scores,
        modules=pannet_modules("pannet.matching"),
    output:
        pairs="results/matching/pairs.parquet",
        matched="results/matching/matched.parquet",
    log:
        "logs/match/match.log",
    params:
        matching=config["matching"],
        seed=config["study"]["seed"],
    script:
        "../scripts/match.py"


rule balance:
    input:
        analysis="results/cohort/analysis.parquet",
        scores=rules.propensity.output.scores,
        matched=rules.match.output.matched,
        modules=pannet_modules("pannet.balance"),
    output:
        "results/matching/balance.parquet",
    log:
        "logs/balance/balance.log",
    params:
        covariates=config["matching"]["covariates"],
        smd_flag=config["tables"]["smd_flag"],
    script:
        "../scripts/balance.py"


rule balance_plots:
    input:
        balance=rules.balance.output[0],
        scores=rules.propensity.output.scores,
        matched=rules.match.output.matched,
        modules=pannet_modules("pannet.balance"),
    output:
        love=report(
            "results/matching/love_plot.png",
            caption="../report/love_plot.rst",
            category="Matching",
        ),
        overlap=report(
            "results/matching/ps_overlap.png",
            caption="../report/ps_overlap.rst",
            category="Matching",
        ),
    log:
        "logs/balance_plots/balance_plots.log",
    params:
        smd_flag=config["tables"]["smd_flag"],
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/balance_plots.py"


rule table1:
    input:
        analysis="results/cohort/analysis.parquet",
        matched=rules.match.output.matched,
        modules=pannet_modules("pannet.table1"),
    output:
        "results/tables/table1.parquet",
    log:
        "logs/table1/table1.log",
    params:
        tables=config["tables"],
        variables=list(TABLE1_LEVELS),
    script:
        "../scripts/table1.py"


ALL_TARGETS.extend(
    [
        *rules.propensity.output,
        *rules.match.output,
        *rules.balance.output,
        *rules.balance_plots.output,
        *rules.table1.output,
    ]
)
