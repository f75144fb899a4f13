"""Export a finished run as a Workflow Run RO-Crate (https://w3id.org/ro/wfrun/workflow).

The crate holds the workflow (Snakefile, rules, scripts, the ``pannet`` sources, config
and site dictionaries), every artefact of the manifest, the environment record, and one
``CreateAction`` that links the workflow to what it read (``object``) and made
(``result``). Raw site exports are described by path and SHA-256 only unless
``include_raw`` is set: a clinical export must not leave its site by accident.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PROFILES = {
    "process": "https://w3id.org/ro/wfrun/process/0.5",
    "workflow": "https://w3id.org/ro/wfrun/workflow/0.5",
    "wfcrate": "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}
WORKFLOW_PARTS = ("workflow", "src/pannet", "config")


def _files_under(root: Path, rel: str) -> list[Path]:
    base = root / rel
    if base.is_file():
        return [base]
    return sorted(
        p
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    )


def export_crate(
    dest: str | os.PathLike,
    root: str | os.PathLike = ".",
    results: str = "results",
    include_raw: bool = False,
) -> Path:
    """Write the Workflow Run RO-Crate of the run in ``root/results`` to ``dest``.

    Parameters
    ----------
    dest : path
        Folder to write the crate to (created; must be empty or absent).
    root : path
        The project root (Snakefile, config, src, results).
    results : str
        The results folder (must hold ``provenance/manifest.parquet``).
    include_raw : bool
        Copy the raw site exports into the crate (default: describe them only).

    Returns
    -------
    Path
        ``dest``.
    """
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    from pannet.io import read_parquet, sha256_file

    root = Path(root).resolve()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty")
    manifest_path = root / results / "provenance" / "manifest.parquet"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} is missing: run the workflow first")
    manifest = read_parquet(manifest_path)
    env_path = root / results / "provenance" / "environment.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}

    crate = ROCrate()
    crate.name = "pannet workflow run"
    crate.description = (
        "A run of the pannet Snakemake workflow (pan-NET primary tumour resection study): "
        "workflow, configuration, artefacts with provenance, and the environment record."
    )
    crate.root_dataset["conformsTo"] = [{"@id": u} for u in PROFILES.values()]
    for key, url in PROFILES.items():
        crate.add(ContextEntity(crate, url, properties={"@type": "CreativeWork", "name": key}))

    workflow = crate.add_workflow(
        root / "Snakefile", "Snakefile", main=True, lang="snakemake", record_size=True
    )
    workflow["name"] = "pannet"
    for part in WORKFLOW_PARTS:
        for f in _files_under(root, part):
            rel = f.relative_to(root).as_posix()
            crate.add_file(f, rel, properties={"sha256": sha256_file(f)})
    for extra in ("requirements.lock", "requirements.in", "pyproject.toml", "Makefile"):
        if (root / extra).exists():
            crate.add_file(root / extra, extra, properties={"sha256": sha256_file(root / extra)})

    results_entities = []
    raw_inputs: dict[str, str] = {}
    for row in manifest.to_dict("records"):
        f = root / row["path"]
        if not f.exists():
            continue
        ent = crate.add_file(
            f,
            row["path"],
            properties={
                "sha256": row["sha256"],
                "contentSize": int(row["bytes"]),
                "description": f"made by rule {row['rule']}" if row["rule"] else "artefact",
            },
        )
        results_entities.append(ent)
        for inp in json.loads(row["inputs"]):
            p = inp["path"]
            if not p.startswith(f"{results}/") and not p.startswith(WORKFLOW_PARTS):
                raw_inputs[p] = inp["sha256"]
    manifest_rel = manifest_path.relative_to(root).as_posix()
    results_entities.append(
        crate.add_file(
            manifest_path, manifest_rel, properties={"sha256": sha256_file(manifest_path)}
        )
    )

    objects = []
    for p, digest in sorted(raw_inputs.items()):
        props = {"sha256": digest, "description": "raw site export (input)"}
        if include_raw and (root / p).exists():
            objects.append(crate.add_file(root / p, p, properties=props))
        else:
            props.update({"@type": "File", "name": p})
            objects.append(crate.add(ContextEntity(crate, f"#raw/{p}", properties=props)))
    config = crate.get("config/config.yaml")
    if config is not None:
        objects.insert(0, config)

    software = [
        crate.add(
            ContextEntity(
                crate,
                f"#software/{name}",
                properties={"@type": "SoftwareApplication", "name": name, "softwareVersion": v},
            )
        )
        for name, v in sorted((env.get("packages") or {}).items())
        if name in ("snakemake", "pandas", "numpy", "pyarrow", "scipy", "lifelines", "scikit-learn")
    ]
    if software:
        workflow["softwareRequirements"] = software
    end = env.get("time")
    action = crate.add_action(
        workflow,
        identifier="#run",
        object=objects,
        result=results_entities,
        properties={
            "name": "Run of the pannet workflow",
            "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
            **({"endTime": end} if end else {}),
        },
    )
    action["description"] = (
        f"environment fingerprint {env.get('fingerprint')}; "
        f"code {env.get('code', {}).get('commit')}"
    )
    crate.write(dest)
    return dest
