"""pannet: the reproducible analysis pipeline of the pan-NET primary tumour resection study.

The logic of every Snakemake step lives here, importable and testable without Snakemake.
Modules are small and named for what they hold; see ``docs`` in the README for a map.
"""

__version__ = "0.1.0"
