"""The Spark session lgrec uses: ``local[N]`` by default, any master URL in production.

Spark runs on the JVM; :func:`java_status` says whether a Java 17+ runtime is on ``PATH``
(Debian: ``apt-get install -y openjdk-17-jre-headless``), and :func:`spark_session` refuses
with that instruction instead of letting PySpark fail with a long Java gateway trace.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

from lgrec.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

JAVA_PACKAGE = "openjdk-17-jre-headless"
MIN_JAVA = 17


def java_status() -> tuple[bool, str]:
    """(usable, description) of the ``java`` on PATH (or under ``$JAVA_HOME``)."""
    home = os.environ.get("JAVA_HOME")
    java = shutil.which("java") or (home and shutil.which("java", path=os.path.join(home, "bin")))
    if not java:
        return False, f"no `java` on PATH; install Java {MIN_JAVA}+ (Debian: {JAVA_PACKAGE})"
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{java} -version failed ({e})"
    m = re.search(r'version "(\d+)', out.stderr + out.stdout)
    major = int(m.group(1)) if m else 0
    if major < MIN_JAVA:
        return False, f"{java} is Java {major or '?'}; Spark 4 needs Java {MIN_JAVA}+"
    return True, f"{java} (Java {major})"


def spark_session(
    master: str | None = None,
    *,
    app: str = "lgrec",
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """Get or create the Spark session.

    Args:
        master: ``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; default
            ``$LGREC_SPARK_MASTER`` or ``local[*]``.
        shuffle_partitions: ``spark.sql.shuffle.partitions`` (default: 4 per core for a local
            master, Spark's 200 otherwise).
        driver_memory: e.g. ``"8g"`` (only takes effect when this call starts the JVM).
        conf: any further Spark settings.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "the Spark engine needs pyspark: pip install 'lgrec[spark]' (or pyspark>=4)"
        ) from None
    ok, what = java_status()
    if not ok:
        raise ConfigError(f"the Spark engine needs Java: {what}")
    master = master or os.environ.get("LGREC_SPARK_MASTER") or "local[*]"
    b = SparkSession.builder.master(master).appName(app)
    # local workers run this interpreter (its pyarrow/pandas), not whatever `python3` is first
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {
        "spark.pyspark.python": os.environ["PYSPARK_PYTHON"],
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.ansi.enabled": "false",
    }
    if master.startswith("local"):
        # a local session listens on loopback only, and tolerates a busy machine's pauses
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings["spark.driver.host"] = settings["spark.driver.bindAddress"] = "127.0.0.1"
        settings["spark.network.timeout"] = "600s"
        settings["spark.executor.heartbeatInterval"] = "60s"
        shuffle_partitions = shuffle_partitions or 4 * (os.cpu_count() or 2)  # not 200
    if shuffle_partitions:
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    if driver_memory:
        settings["spark.driver.memory"] = driver_memory
    settings.update(conf or {})
    for k, v in settings.items():
        b = b.config(k, v)
    log.info("starting Spark (%s, %s)", master, what)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
