# Stage: bootstrap - replicates of the matched effect estimates in batches, then the
# percentile and BCa intervals. Replicate r draws from SeedSequence(seed).spawn(B)[r], so
# the batches (and their grouping on a cluster) never change a number.
BOOT = config["bootstrap"]
BOOT_BATCHES = list(
    range((BOOT["replicates"] + BOOT["batch_size"] - 1) // BOOT["batch_size"])
)
# pairs: resample the matched pairs; full: resample the cohort, refit and rematch
BOOT_DATA = {
    "pairs": "results/matching/matched.parquet",
    "full": "results/cohort/analysis.parquet",
}[BOOT["scheme"]]


rule bootstrap_batch:
    input:
        data=BOOT_DATA,
        modules=pannet_modules("pannet.bootstrap"),
    output:
        "results/bootstrap/batch_{batch}.parquet",
    log:
        "logs/bootstrap_batch/batch_{batch}.log",
    wildcard_constraints:
        batch=r"\d+",
    group:
        "bootstrap"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        config={
            "bootstrap": BOOT,
            "matching": config["matching"],
            "survival": config["survival"],
        },
    script:
        "../scripts/bootstrap_batch.py"


rule bootstrap_summary:
    input:
        data=BOOT_DATA,
        batches=expand("results/bootstrap/batch_{batch}.parquet", batch=BOOT_BATCHES),
        modules=pannet_modules("pannet.bootstrap"),
    output:
        "results/bootstrap/summary.parquet",
    log:
        "logs/bootstrap_summary/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        config={
            "bootstrap": BOOT,
            "matching": config["matching"],
            "survival": config["survival"],
        },
    script:
        "../scripts/bootstrap_summary.py"


ALL_TARGETS.extend(rules.bootstrap_summary.output)
