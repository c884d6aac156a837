"""Ad-hoc report: the most frequent words of a text (the built-in sample, or a file given as argument).

Usage: adhoc_report.py [PATH] [--top N]
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SAMPLE = """bigk schedules spark jobs as gangs so that a driver only starts when its executors fit
gpus are shared by fractions and whole gpus are packed so that fewer gpus are stranded
every spark job names bigk as its scheduler and carries its queue and priority"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default="")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()

    spark = SparkSession.builder.appName("bigk-adhoc-report").getOrCreate()
    lines = (
        spark.read.text(args.path)
        if args.path
        else spark.createDataFrame([(line,) for line in SAMPLE.splitlines()], ["value"])
    )
    words = lines.select(F.explode(F.split(F.lower("value"), r"[^a-z0-9]+")).alias("word")).where(F.length("word") > 2)
    top = words.groupBy("word").count().orderBy(F.desc("count"), "word").limit(args.top).collect()
    if not top:
        print("adhoc_report: FAILED: no words", file=sys.stderr)
        return 1
    print("adhoc_report: ok top=" + ",".join(f"{row['word']}:{row['count']}" for row in top))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
