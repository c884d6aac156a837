"""Hourly scoring: apply a small logistic model to the latest feature rows.

The model is a handful of coefficients, so scoring is a SQL expression the RAPIDS
plugin can run on a fraction of a GPU; on CPUs it runs unchanged.
Usage: gpu_scoring.py [--rows N] [--threshold T]
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

COEFFICIENTS = {"spend_avg": 0.031, "spend_max": -0.012, "visits": 0.2}
INTERCEPT = -1.5


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()

    spark = SparkSession.builder.appName("bigk-gpu-scoring").getOrCreate()
    features = spark.range(args.rows).select(
        "id",
        ((F.col("id") * 31) % 100).cast("double").alias("spend_avg"),
        ((F.col("id") * 17) % 150).cast("double").alias("spend_max"),
        (F.col("id") % 12).cast("double").alias("visits"),
    )
    logit = F.lit(INTERCEPT)
    for column, weight in COEFFICIENTS.items():
        logit = logit + F.col(column) * weight
    scored = features.withColumn("score", 1 / (1 + F.exp(-logit)))
    stats = scored.agg(F.min("score"), F.max("score"), F.sum((F.col("score") > args.threshold).cast("int"))).first()
    assert stats is not None  # an aggregate always has one row
    low, high, flagged = stats[0], stats[1], stats[2]
    if not (0.0 <= low <= high <= 1.0):
        print(f"gpu_scoring: FAILED: scores out of range [{low}, {high}]", file=sys.stderr)
        return 1
    print(f"gpu_scoring: ok rows={args.rows} flagged={flagged}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
