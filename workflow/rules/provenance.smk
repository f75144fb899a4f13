# Stage: provenance - the environment record and the manifest of every artefact.
# Included last: the manifest depends on every other stage's final targets, so it is
# written after them, and a change to any of them rewrites it.
from pannet.provenance import environment_fingerprint

# The stages' final targets, taken before this file adds its own.
STAGE_TARGETS = sorted(set(ALL_TARGETS))


rule environment_record:
    input:
        lock="requirements.lock",
        # pannet_modules() leaves out the provenance module (it changes metadata only),
        # but this rule's output is made by it.
        modules="src/pannet/provenance.py",
    output:
        "results/provenance/environment.json",
    log:
        "logs/environment_record/environment_record.log",
    params:
        # Reruns the record when any installed package changes, not only the lock file.
        fingerprint=environment_fingerprint(),
    script:
        "../scripts/environment_record.py"


rule manifest:
    input:
        targets=STAGE_TARGETS,
        environment=rules.environment_record.output[0],
        modules=pannet_modules("pannet.audit"),
    output:
        "results/provenance/manifest.parquet",
    log:
        "logs/manifest/manifest.log",
    params:
        # the results folder holding this rule's output (results/provenance/..)
        results=lambda wildcards, output: str(Path(output[0]).parents[1]),
    script:
        "../scripts/manifest.py"


ALL_TARGETS.extend(rules.environment_record.output + rules.manifest.output)
