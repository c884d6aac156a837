"""Spark: a job spec turned into a spark-submit argv and pod templates, and local runs with pyspark."""
