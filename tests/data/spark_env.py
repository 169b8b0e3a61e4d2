"""Spark for the tests: Java 17 installed when missing (Debian, as root), one local session.

CI machines may lack Java; the project's own test set-up installs it with
``apt-get install -y openjdk-17-jre-headless`` (after ``apt-get update`` if the first try
fails). The tests skip only when that is impossible (not root, no apt-get, install failed),
and the skip reason says which.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from lgrec.data.spark.session import JAVA_PACKAGE, java_status


def ensure_java() -> None:
    """Install Java when it is missing, or skip with the reason it cannot be installed."""
    ok, what = java_status()
    if ok:
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip(f"Spark needs Java 17 ({what}) and it cannot be installed here (not root/apt)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", JAVA_PACKAGE]
    for attempt in range(2):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        ok, what = java_status()
        if ok:
            return
    pytest.skip(f"Spark needs Java 17; `{' '.join(cmd)}` failed: {done.stderr[-400:]}")


@pytest.fixture(scope="session")
def spark():
    """One SparkSession (local[2], 2 shuffle partitions) for the whole test session."""
    ensure_java()
    from lgrec.data.spark import spark_session

    s = spark_session(
        "local[2]",
        app="lgrec-tests",
        shuffle_partitions=2,
        conf={
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.memory": "2g",
            "spark.sql.autoBroadcastJoinThreshold": str(64 << 20),
        },
    )
    yield s
    s.stop()
