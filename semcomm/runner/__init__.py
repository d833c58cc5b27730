"""YAML experiment -> validated config -> sweep -> ``results/<experiment>/<timestamp>/``.

::

    config.py   load_experiment(path) -> Experiment (pydantic, one-line errors, extends)
    sweep.py    Context, phase_one (encode once, error-free), phase_two (link points)
    measure.py  segmentation + image metrics with content caches
    store.py    points.jsonl (append + fsync, resumable)
    summary.py  points -> summary rows (Wilson / bootstrap intervals)
    plots.py    figures; run.py: run_experiment(); cli.py: ``semcomm run``

Submodules are imported on use (``semcomm --help`` stays fast).
"""
