"""Pseudonymisation: local patient identifiers -> keyed HMAC-SHA-256 ``patient_key``.

The pseudonym is ``HMAC-SHA-256(key, normalised identifier)`` as 64 lower-case hex
digits. The normalised identifier is:

* personnummer: ``"personnummer:" + YYMMDDNNNC`` - digits only, a 12-digit form
  (YYYYMMDDNNNC) shortened to its 10 digits, so the same person gets the same pseudonym
  at every Swedish site whichever way the site writes the number (``-``, ``+``, century);
* MRN: ``"mrn:" + site + ":" + upper-case MRN without blanks`` - a medical record number
  is only unique within the hospital that issued it, so the site is part of it.

Where the key comes from (first that applies):

1. the environment variable named by ``pseudonymisation.key_env``;
2. the file ``pseudonymisation.key_file`` (its first line), which must lie outside the
   project folder;
3. :data:`DEMO_KEY`, only when ``pseudonymisation.demo_key`` is true *and*
   ``study.synthetic`` is true (the synthetic demo cohort).

Otherwise :class:`PseudonymKeyError` says how to provide one. The key is never written
to an artefact, a log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

import pandas as pd

DEMO_KEY = "pannet-public-demo-key:synthetic-data-only"
"""The documented public demo key. It is public, so pseudonyms made with it protect
nothing: it is accepted only for the synthetic demo cohort."""

MIN_KEY_LENGTH = 16
_NON_DIGIT = re.compile(r"\D")
_BLANK = re.compile(r"\s+")


class PseudonymKeyError(RuntimeError):
    """No usable pseudonymisation key; the message says how to provide one."""


def resolve_key(
    pseudo_cfg: dict, *, synthetic: bool, project_root: str | Path | None = None
) -> bytes:
    """The pseudonymisation key as bytes, from the environment, a key file or the demo key.

    Parameters
    ----------
    pseudo_cfg : dict
        The ``pseudonymisation`` config section (``key_env``, ``key_file``, ``demo_key``).
    synthetic : bool
        ``study.synthetic``; the demo key is refused on real data.
    project_root : path, optional
        A key file inside this folder is refused (it would end up in the repository).
    """
    env = pseudo_cfg.get("key_env") or "PANNET_PSEUDONYM_KEY"
    value = os.environ.get(env)
    source = f"environment variable {env}"
    if not value and pseudo_cfg.get("key_file"):
        path = Path(pseudo_cfg["key_file"]).expanduser().resolve()
        if project_root is not None and path.is_relative_to(Path(project_root).resolve()):
            raise PseudonymKeyError(
                f"pseudonymisation.key_file {path} lies inside the project folder; "
                "move it outside the repository"
            )
        if not path.is_file():
            raise PseudonymKeyError(f"pseudonymisation.key_file {path} does not exist")
        lines = path.read_text(encoding="utf-8").splitlines()
        value = lines[0].strip() if lines else ""
        source = f"key file {path}"
    if not value:
        if pseudo_cfg.get("demo_key") and synthetic:
            return DEMO_KEY.encode()
        why = (
            " (pseudonymisation.demo_key is set, but study.synthetic is false: the public "
            "demo key is refused on real data)"
            if pseudo_cfg.get("demo_key")
            else ""
        )
        raise PseudonymKeyError(
            f"no pseudonymisation key: set the environment variable {env} or "
            f"pseudonymisation.key_file (a file outside the repository){why}"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise PseudonymKeyError(
            f"the key from {source} is shorter than {MIN_KEY_LENGTH} characters"
        )
    return value.encode()


def normalise_identifier(value, kind: str, site: str) -> str | None:
    """The canonical text of a local identifier (see the module docstring); None if missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    if kind == "personnummer":
        digits = _NON_DIGIT.sub("", text)
        if len(digits) == 12:
            digits = digits[2:]
        return f"personnummer:{digits}"
    if kind == "mrn":
        return f"mrn:{site}:{_BLANK.sub('', text).upper()}"
    raise ValueError(f"unknown identifier kind {kind!r} (personnummer | mrn)")


def pseudonym(normalised: str, key: bytes) -> str:
    """HMAC-SHA-256 of one normalised identifier, hex."""
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonymise(ids: pd.Series, *, kind: str, site: str, key: bytes) -> pd.Series:
    """Pseudonyms of a Series of local identifiers (``<NA>`` where the identifier is missing)."""
    out = [
        None if (n := normalise_identifier(v, kind, site)) is None else pseudonym(n, key)
        for v in ids.tolist()
    ]
    return pd.Series(out, index=ids.index, dtype="string", name="patient_key")
