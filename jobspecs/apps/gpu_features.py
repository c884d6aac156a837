"""Feature engineering for a churn model: rolling per-user aggregates with window functions.

Written in plain Spark SQL so the RAPIDS Accelerator can run it on GPUs when the
plugin is configured, and so it also runs on CPUs (e.g. `bigk run-local`).
Usage: gpu_features.py [--users N] [--events-per-user N] [--output DIR]
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--events-per-user", type=int, default=50)
    parser.add_argument("--output", default="")
    args = parser.parse_args()

    spark = SparkSession.builder.appName("bigk-gpu-features").getOrCreate()
    events = spark.range(args.users * args.events_per_user).select(
        (F.col("id") % args.users).alias("user_id"),
        (F.col("id") / args.users).cast("int").alias("step"),
        ((F.col("id") * 2654435761) % 1000 / 10.0).alias("spend"),
    )
    recent = Window.partitionBy("user_id").orderBy("step").rowsBetween(-6, 0)
    features = events.select(
        "user_id",
        "step",
        F.avg("spend").over(recent).alias("spend_avg_7"),
        F.max("spend").over(recent).alias("spend_max_7"),
        F.stddev_pop("spend").over(recent).alias("spend_std_7"),
    ).where(F.col("step") == args.events_per_user - 1)
    rows = features.count()
    if rows != args.users:
        print(f"gpu_features: FAILED: {rows} feature rows for {args.users} users", file=sys.stderr)
        return 1
    if args.output:
        features.write.mode("overwrite").parquet(args.output)
    print(f"gpu_features: ok users={rows}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
