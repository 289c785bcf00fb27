"""``python -m robustdistill.experiments.cli`` (and ``torchrun ... -m robustdistill.experiments.cli``): the
``robustdistill`` command line."""

from robustdistill.experiments.cli import main

raise SystemExit(main())
