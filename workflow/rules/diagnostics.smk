# Stage: diagnostics - PH tests, stratified Cox, power, equipoise and generalizability,
# the diagnostics table, and the shareable bundle (aggregates only, small counts suppressed).
DIAG = config["diagnostics"]
DIAG_POPULATIONS = config["survival"]["populations"]
DIAG_ENDPOINTS = config["survival"]["endpoints"]
DIAG_TABLES = [
    "diagnostics",
    "ph_tests",
    "ph_residuals",
    "stratified_cox",
    "power",
    "equipoise",
    "preference",
    "generalizability",
]
SHARE_TABLES = [
    "diagnostics",
    "power",
    "equipoise",
    "preference",
    "generalizability",
    "ph_tests",
    "stratified_cox",
    "survival_tests",
]


DIAG_SURVIVAL_TESTS = [
    f"results/survival/{p}_{e}_tests.parquet"
    for p in DIAG_POPULATIONS
    for e in DIAG_ENDPOINTS
]


rule diagnostics:
    input:
        analysis="results/cohort/analysis.parquet",
        scores="results/matching/scores.parquet",
        pairs="results/matching/pairs.parquet",
        matched="results/matching/matched.parquet",
        balance="results/matching/balance.parquet",
        sensitivity=(
            ["results/sensitivity/cohort.parquet"]
            if "sensitivity" in DIAG_POPULATIONS
            else []
        ),
        survival_tests=DIAG_SURVIVAL_TESTS,
        modules=pannet_modules("pannet.diagnostics"),
    output:
        **{
            name: (
                report(
                    f"results/diagnostics/{name}.parquet",
                    caption="../report/diagnostics.rst",
                    category="Diagnostics",
                )
                if name == "diagnostics"
                else f"results/diagnostics/{name}.parquet"
            )
            for name in DIAG_TABLES
        },
    log:
        "logs/diagnostics/diagnostics.log",
    params:
        diagnostics=DIAG,
        covariates=config["matching"]["covariates"],
        populations=DIAG_POPULATIONS,
        endpoints=DIAG_ENDPOINTS,
    script:
        "../scripts/diagnostics.py"


rule ph_plot:
    input:
        tests=rules.diagnostics.output.ph_tests,
        residuals=rules.diagnostics.output.ph_residuals,
        modules=pannet_modules("pannet.phtest"),
    output:
        report(
            "results/diagnostics/ph_residuals.png",
            caption="../report/ph_residuals.rst",
            category="Diagnostics",
        ),
    log:
        "logs/ph_plot/ph_plot.log",
    params:
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/ph_plot.py"


rule preference_plot:
    input:
        preference=rules.diagnostics.output.preference,
        modules=pannet_modules("pannet.equipoise"),
    output:
        report(
            "results/diagnostics/preference_score.png",
            caption="../report/preference_score.rst",
            category="Diagnostics",
        ),
    log:
        "logs/preference_plot/preference_plot.log",
    params:
        bounds=DIAG["equipoise_bounds"],
    script:
        "../scripts/preference_plot.py"


rule share_bundle:
    input:
        **{
            name: f"results/diagnostics/{name}.parquet"
            for name in SHARE_TABLES
            if name != "survival_tests"
        },
        survival_tests=DIAG_SURVIVAL_TESTS,
        modules=pannet_modules("pannet.share"),
    output:
        tables=expand("results/share/{name}.csv", name=SHARE_TABLES),
        figure="results/share/preference_score.png",
        manifest="results/share/MANIFEST.csv",
        readme="results/share/README.txt",
    log:
        "logs/share_bundle/share_bundle.log",
    params:
        min_cell=DIAG["min_cell_count"],
        bounds=DIAG["equipoise_bounds"],
        synthetic=config["study"]["synthetic"],
        tables=SHARE_TABLES,
    script:
        "../scripts/share_bundle.py"


ALL_TARGETS.extend(
    [
        *rules.diagnostics.output,
        *rules.ph_plot.output,
        *rules.preference_plot.output,
        *rules.share_bundle.output,
    ]
)
