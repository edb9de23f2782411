"""The file to hand ``spark-submit`` on a cluster: ``mlship predict --engine spark ...``.

    spark-submit "$(python -c 'import mlship.cli.spark_submit as m; print(m.__file__)')" \\
        --model DIR --input URI --output URI

It lives with the command line, not in ``mlship.batch``, because it *is* the command line:
the same options, parsed by the same command, with the master taken from spark-submit.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from mlship.cli import app

    app(["predict", "--engine", "spark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
