"""Power of a survival comparison: the minimum detectable hazard ratio (Schoenfeld 1983).

With D events in total and a share p of the patients in the treated group, the log-rank
test / Cox model at two-sided level alpha has the requested power against hazard ratios
at least as far from 1 as

    MDRR = exp( (z_{1 - alpha/2} + z_{power}) / sqrt(D p (1 - p)) )

(Schoenfeld 1983, Biometrika 70:315; the formula OHDSI CohortMethod's ``computeMdrr``
uses for Cox models). A study whose MDRR is large can only detect large effects: a
non-significant result then says little.

R equivalent::

    exp(sqrt((qnorm(1 - alpha / 2) + qnorm(power))^2 / (D * p * (1 - p))))
"""

from __future__ import annotations

import math

__all__ = ["mdrr", "events_required"]


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def mdrr(
    n_treated: int,
    n_control: int,
    events: int,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> float:
    """Minimum detectable hazard ratio (> 1) of a two-group survival comparison.

    Parameters
    ----------
    n_treated, n_control : int
        Patients in each group (for a 1:1 matched analysis the two are equal, p = 0.5).
    events : int
        Events observed in both groups together.
    alpha : float
        Type I error (two-sided unless ``two_sided`` is False).
    power : float
        Required power, 1 - beta.

    Returns
    -------
    float
        The MDRR; ``inf`` when there are no events or an empty group. Its reciprocal is the
        detectable protective hazard ratio.

    Examples
    --------
    >>> round(mdrr(50, 50, 60), 4)  # 1:1, 60 deaths
    2.0614
    """
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha ({alpha}) and power ({power}) must lie in (0, 1)")
    if min(n_treated, n_control) < 0 or events < 0:
        raise ValueError("counts must be non-negative")
    n = n_treated + n_control
    if events == 0 or n_treated == 0 or n_control == 0:
        return math.inf
    p = n_treated / n
    z_alpha = _z(1 - alpha / 2) if two_sided else _z(1 - alpha)
    z_beta = _z(power)
    return math.exp(math.sqrt((z_alpha + z_beta) ** 2 / (events * p * (1 - p))))


def events_required(
    hr: float, p: float = 0.5, alpha: float = 0.05, power: float = 0.8, two_sided: bool = True
) -> float:
    """Events needed to detect hazard ratio ``hr`` (Schoenfeld 1983); the inverse of :func:`mdrr`."""
    if hr <= 0 or hr == 1:
        raise ValueError("hr must be positive and not 1")
    z_alpha = _z(1 - alpha / 2) if two_sided else _z(1 - alpha)
    return (z_alpha + _z(power)) ** 2 / (p * (1 - p) * math.log(hr) ** 2)
