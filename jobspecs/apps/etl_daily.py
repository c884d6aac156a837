"""Nightly ETL: synthetic orders -> revenue per day and category, checked and written as Parquet.

Usage: etl_daily.py [--rows N] [--output DIR]
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--output", default="")
    args = parser.parse_args()

    spark = SparkSession.builder.appName("bigk-etl-daily").getOrCreate()
    orders = spark.range(args.rows).select(
        F.col("id").alias("order_id"),
        F.date_add(F.lit("2026-01-01"), (F.col("id") % 30).cast("int")).alias("day"),
        F.element_at(
            F.array(*[F.lit(c) for c in ("books", "games", "garden", "music")]), (F.col("id") % 4 + 1).cast("int")
        ).alias("category"),
        ((F.col("id") * 7919) % 10_000 / 100.0).alias("amount"),
    )
    daily = orders.groupBy("day", "category").agg(
        F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue")
    )
    row = daily.agg(F.sum("orders")).first()
    total = row[0] if row is not None else 0
    if total != args.rows:
        print(f"etl_daily: FAILED row check: {total} != {args.rows}", file=sys.stderr)
        return 1
    if args.output:
        daily.write.mode("overwrite").parquet(args.output)
    print(f"etl_daily: ok groups={daily.count()} orders={total}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
