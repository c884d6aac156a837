# The image the Helm chart runs (`bigk serve`, `bigk agent`): bigk, pyspark's spark-submit, Java 17.
# Not built in CI (no container engine there); build it with `docker build -t bigk/bigk:0.1.0 .`.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/bigk
COPY pyproject.toml README.md ./
COPY bigk ./bigk
RUN pip install --no-cache-dir .
COPY jobspecs ./jobspecs
RUN useradd --uid 10001 --create-home bigk
USER 10001
ENTRYPOINT ["tini", "--", "bigk"]
CMD ["serve", "--help"]
