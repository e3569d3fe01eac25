"""Run Apache Kafka (KRaft, jars from Maven Central) as 1 to 5 separate local processes.

Every node is broker and controller at once and listens on ``broker.host`` only. State lives in
``state_dir``: ``cluster.json`` (cluster id and the ports that must never change, see
``ClusterLayout``), ``kafka.pid`` (JSON: each node's pid, port and start time), ``log4j2.xml``,
and one ``node-<id>/`` folder per node with its ``server.properties``, ``server.log``
(log4j2), ``stdout.log`` (the JVM's own output) and ``data/`` (the log dir, kept across
stop/start: formatted once, when it has no ``meta.properties``).

``stop`` signals only a process whose command line is still ``kafka.Kafka`` with that node's
``server.properties`` path, so a stale pid file never kills a stranger. A JVM takes seconds to
start on a small machine, so the wait for readiness is at least 90 s whatever
``broker.start_timeout_s`` says (that default, 15 s, is sized for tansu).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, cast

from streams.broker.jars import java_binary, resolve_jars
from streams.broker.kafka_config import (
    LOG4J2_XML,
    ClusterLayout,
    node_properties,
    render_properties,
)
from streams.broker.local_security import ADMIN, LocalSecurity
from streams.broker.process import (
    BrokerError,
    BrokerStatus,
    NodeStatus,
    PidFile,
    clean_env,
    cmdline,
    kill,
    port_free,
    tail,
    terminate_all,
    write_private,
)
from streams.config import BrokerSecurity, Settings
from streams.kafka.clients import BrokerUnreachableError, probe
from streams.logs import get_logger

PID_FILE: Final = "kafka.pid"  # its name tells `darkroom broker stop` which engine a dir holds
MIN_START_TIMEOUT_S: Final = 90.0
FORMAT_TIMEOUT_S: Final = 120.0
# What Java, log4j2 or Kafka's own scripts read from the environment; none may reach the nodes.
_DROP_PREFIXES: Final = ("KAFKA_", "LOG4J_")
_DROP: Final = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH", "JMX_PORT")

_log = get_logger(__name__)


class KafkaCluster:
    """Start, stop and inspect a local Apache Kafka cluster of ``broker.nodes`` nodes."""

    def __init__(self, settings: Settings, progress: Callable[[str], None] | None = None) -> None:
        broker = settings.broker
        self.settings = settings
        self.host = broker.host
        self.port = broker.port
        self.nodes = broker.nodes
        self.version = broker.kafka_version
        self.state_dir = broker.state_dir.absolute()  # command lines name it: never relative
        self.pid_file = self.state_dir / PID_FILE
        self.layout_file = self.state_dir / "cluster.json"
        self.log_file = self.log_file_of(1)
        self.start_timeout_s = max(broker.start_timeout_s, MIN_START_TIMEOUT_S)
        self.security = LocalSecurity(self.state_dir, broker.security, broker.users, self.host)
        self._pids = PidFile(self.pid_file)
        self._progress = progress or (lambda message: _log.info(message))
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    # -- where things are ------------------------------------------------------------------

    @property
    def node_ids(self) -> list[int]:
        """1..nodes."""
        return list(range(1, self.nodes + 1))

    def node_dir(self, node_id: int) -> Path:
        """The folder of one node."""
        return self.state_dir / f"node-{node_id}"

    def log_file_of(self, node_id: int) -> Path:
        """The broker log (log4j2) of one node."""
        return self.node_dir(node_id) / "server.log"

    def _properties(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    @property
    def bootstrap(self) -> str:
        """host:port of every node, comma-separated. Nodes 2..N are known once the cluster is
        planned (``plan()``: by ``start()`` or ``private_broker_settings``); before, node 1."""
        layout = ClusterLayout.load(self.layout_file)
        ids = self.node_ids if layout is not None else [1]
        return ",".join(self._bootstrap_of(n, layout) for n in ids)

    def node_bootstrap(self, node_id: int) -> str:
        """host:port of one node."""
        return self._bootstrap_of(node_id, self.plan())

    def _bootstrap_of(self, node_id: int, layout: ClusterLayout | None) -> str:
        port = self.port if layout is None else layout.broker_port(node_id, self.port)
        return f"{self.host}:{port}"

    def plan(self) -> ClusterLayout:
        """The cluster's id and ports: as saved in this state dir, else chosen now and saved."""
        layout = ClusterLayout.load(self.layout_file)
        if layout is None:
            layout = ClusterLayout.create(self.nodes, self.host, self.port, self.security.mode)
            layout.save(self.layout_file)
        elif layout.security != self.security.mode:
            raise BrokerError(
                f"{self.state_dir} holds a Kafka cluster with security {layout.security}, not "
                f"{self.security.mode}: start it with --security {layout.security}, or use "
                "another state dir (DARKROOM_BROKER_STATE_DIR)"
            )
        elif layout.nodes != self.nodes:
            raise BrokerError(
                f"{self.state_dir} holds a {layout.nodes}-node Kafka cluster, not {self.nodes}: "
                f"start it with --nodes {layout.nodes}, or use another state dir "
                "(DARKROOM_BROKER_STATE_DIR), or delete that folder and its data"
            )
        return layout

    def recorded_security(self) -> BrokerSecurity | None:
        """The security mode this state dir's cluster was created with (None: no cluster)."""
        layout = ClusterLayout.load(self.layout_file)
        return None if layout is None else cast(BrokerSecurity, layout.security)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BrokerStatus:
        """Start every node that is not running and wait until each answers Metadata and sees
        the whole cluster; a no-op when all run."""
        current = self.status()
        down = [n.node_id for n in current.nodes if not n.running]
        if current.running and not down:
            return current
        self._start_nodes(down or self.node_ids, expect=set(self.node_ids))
        return replace(self.status(), detail="started")

    def start_node(self, node_id: int) -> BrokerStatus:
        """Start one node again (after ``kill_node``) and wait until it answers."""
        self._check_node(node_id)
        if not self._node_alive(node_id, self._record()):
            self._start_nodes([node_id], expect={node_id})
        return self.status()

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would (failover tests); its data stays."""
        self._check_node(node_id)
        record = self._record()
        if not self._node_alive(node_id, record):
            raise BrokerError(f"Kafka node {node_id} in {self.state_dir} is not running")
        kill(int(record["nodes"][str(node_id)]["pid"]))
        self._forget(node_id)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop every node this state dir started (SIGTERM; SIGKILL after ``timeout_s``: a
        clean Kafka shutdown takes 5-10 s); False if none was running."""
        record = self._record()
        pids = [
            int(entry["pid"])
            for node, entry in record["nodes"].items()
            if self._node_alive(int(node), record)
        ]
        terminate_all(pids, timeout_s)
        for process in self._processes.values():
            process.poll()  # reaped already: this only records it
        self._processes.clear()
        self._pids.remove()
        return bool(pids)

    def status(self) -> BrokerStatus:
        """Running or not, per node, from the pid file, the process table and Metadata probes."""
        record = self._record()
        count = int(record.get("node_count", self.nodes))
        ports = {int(k): int(v) for k, v in record.get("ports", {}).items()}
        nodes = tuple(self._node_status(n, record, ports) for n in range(1, count + 1))
        bootstrap = ",".join(n.bootstrap for n in nodes)
        alive = [n for n in nodes if n.running]
        if not alive:
            detail = "not started (no pid file)" if not record["nodes"] else "not running"
            return BrokerStatus(False, bootstrap, None, None, self.log_file, detail, nodes)
        answering = sum(n.detail == "answering Metadata" for n in nodes)
        if answering == count:
            detail = "answering Metadata"
        else:
            detail = f"{len(alive)} of {count} nodes running, {answering} answering Metadata"
        started = min(n.started_at or time.time() for n in alive)
        return BrokerStatus(True, bootstrap, alive[0].pid, started, self.log_file, detail, nodes)

    # -- internals ---------------------------------------------------------------------------

    def _check_node(self, node_id: int) -> None:
        if node_id not in self.node_ids:
            raise BrokerError(f"no Kafka node {node_id}: this cluster has nodes 1..{self.nodes}")

    def _record(self) -> dict[str, Any]:
        record = self._pids.read() or {}
        if record.get("engine") != "kafka":
            record = {}
        record.setdefault("nodes", {})
        return record

    def _node_alive(self, node_id: int, record: dict[str, Any]) -> bool:
        entry = record["nodes"].get(str(node_id))
        if entry is None:
            return False
        line = cmdline(int(entry["pid"]))
        # the node's own server.properties path is unique to this state dir and node
        return line is not None and "kafka.Kafka" in line and str(self._properties(node_id)) in line

    def _node_status(
        self, node_id: int, record: dict[str, Any], ports: dict[int, int]
    ) -> NodeStatus:
        fallback = self._bootstrap_of(node_id, ClusterLayout.load(self.layout_file))
        bootstrap = f"{self.host}:{ports[node_id]}" if node_id in ports else fallback
        log = self.log_file_of(node_id)
        if not self._node_alive(node_id, record):
            return NodeStatus(node_id, False, bootstrap, None, None, log, "not running")
        entry = record["nodes"][str(node_id)]
        pid, started_at = int(entry["pid"]), float(entry["started_at"])
        try:
            probe(self._probe_settings(bootstrap), timeout_s=2.0)
            detail = "answering Metadata"
        except BrokerUnreachableError:
            detail = "process alive but not answering Metadata"
        return NodeStatus(node_id, True, bootstrap, pid, started_at, log, detail)

    def client_settings(self, user: str = ADMIN, mechanism: str = "SCRAM-SHA-512") -> Settings:
        """The settings with every node's bootstrap and the security that connects as ``user``
        (the super user by default; none in plaintext mode)."""
        ports = self._record().get("ports", {})  # as started (node 1's port may differ now)
        bootstrap = ",".join(f"{self.host}:{p}" for _, p in sorted(ports.items()))
        return self._probe_settings(bootstrap or self.bootstrap, user, mechanism)

    def _probe_settings(
        self, bootstrap: str, user: str = ADMIN, mechanism: str = "SCRAM-SHA-512"
    ) -> Settings:
        # the cluster's own security, never the user's librdkafka settings (for their cluster)
        client = self.security.client(user, mechanism)
        kafka = self.settings.kafka.model_copy(
            update={
                "bootstrap": bootstrap,
                "profile": "standard",
                "librdkafka": client.librdkafka,
                "secret_files": client.secret_files,
            }
        )
        return self.settings.model_copy(update={"kafka": kafka})

    def _start_nodes(self, node_ids: list[int], expect: set[int]) -> None:
        """Plan, check the ports, find Java and the jars, format new nodes, start, wait."""
        layout = self.plan()
        self._check_ports(node_ids, layout)  # first: the cheapest error, needs no Java
        java = java_binary()
        jars = resolve_jars(self.version, self.settings.broker.cache_dir, self._progress)
        (self.state_dir / "log4j2.xml").write_text(LOG4J2_XML, encoding="utf-8")
        fresh = []
        security = self.security.properties()
        for node in node_ids:
            data = self.node_dir(node) / "data"
            props = node_properties(
                node, layout, self.host, self.port, data, self.security.listener, security
            )
            self._properties(node).parent.mkdir(parents=True, exist_ok=True)
            write_private(self._properties(node), render_properties(props))  # holds passwords
            if not (data / "meta.properties").is_file():  # formatted once: data survives
                fresh.append(node)
        self._format(fresh, java, jars, layout)
        started: list[int] = []
        try:
            for node in node_ids:
                self._launch(node, java, jars, layout)
                started.append(node)
            self._wait_ready(started, expect)
            self.security.create_users(self.client_settings())
        except BaseException:
            record = self._record()
            pids = [int(record["nodes"][str(n)]["pid"]) for n in started]
            terminate_all(pids, timeout_s=10.0)
            for node in started:
                self._forget(node)
            raise

    def _check_ports(self, node_ids: Iterable[int], layout: ClusterLayout) -> None:
        for node in node_ids:
            for kind, port in (
                ("client", layout.broker_port(node, self.port)),
                ("controller", layout.controller_ports[node]),
            ):
                if not port_free(self.host, port):
                    hint = (
                        "choose another with DARKROOM_BROKER_PORT (and DARKROOM_KAFKA_BOOTSTRAP "
                        "to match)"
                        if node == 1 and kind == "client"
                        else f"it was chosen when this cluster was created ({self.layout_file})"
                    )
                    raise BrokerError(
                        f"{self.host}:{port} ({kind} port of Kafka node {node}) is already in "
                        f"use by another process; {hint}"
                    )

    def _java_command(self, java: Path, jars: Path, node_id: int, *args: str) -> list[str]:
        heap = self.settings.broker.heap_mb
        return [
            str(java),
            f"-Xmx{heap}m",
            f"-Xms{heap}m",
            # as Kafka's own kafka-run-class.sh starts a broker
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",  # a node out of heap dies loudly instead of limping
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.node_dir(node_id)}",
            "-cp",
            f"{jars}/*",
            *args,
        ]

    def _format(self, node_ids: list[int], java: Path, jars: Path, layout: ClusterLayout) -> None:
        """`kafka-storage format` for each new node, in parallel (a JVM start each)."""
        env = clean_env(_DROP_PREFIXES, _DROP)
        running = []
        for node in node_ids:
            args = ("kafka.tools.StorageTool", "format", "-t", layout.cluster_id)
            config = ("-c", str(self._properties(node)), *self.security.scram_arguments())
            command = self._java_command(java, jars, node, *args, *config)
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            running.append((node, proc))
        failures = []
        for node, proc in running:
            try:
                output, _ = proc.communicate(timeout=FORMAT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
            if proc.returncode != 0:
                text = output.decode(errors="replace").strip()
                failures.append(f"node {node} (exit {proc.returncode}): {text[-1500:]}")
        if failures:
            raise BrokerError("formatting Kafka storage failed: " + "; ".join(failures))

    def _launch(self, node_id: int, java: Path, jars: Path, layout: ClusterLayout) -> None:
        command = self._java_command(
            java, jars, node_id, "kafka.Kafka", str(self._properties(node_id))
        )
        with (self.node_dir(node_id) / "stdout.log").open("ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(_DROP_PREFIXES, _DROP),
                start_new_session=True,  # Ctrl-C in the terminal does not reach it; stop() does
            )
        self._processes[node_id] = process
        record = self._record()
        record.update(
            engine="kafka",
            version=self.version,
            host=self.host,
            node_count=self.nodes,
            ports={str(n): layout.broker_port(n, self.port) for n in self.node_ids},
        )
        record["nodes"][str(node_id)] = {"pid": process.pid, "started_at": time.time()}
        self._pids.write(record)

    def _forget(self, node_id: int) -> None:
        process = self._processes.pop(node_id, None)
        if process is not None:
            process.poll()
        record = self._record()
        record["nodes"].pop(str(node_id), None)
        if record["nodes"]:
            self._pids.write(record)
        else:
            self._pids.remove()

    def _wait_ready(self, node_ids: list[int], expect: set[int]) -> None:
        """Until each node answers Metadata from itself and lists every node in ``expect``."""
        deadline = time.monotonic() + self.start_timeout_s
        pending = list(node_ids)
        while pending and time.monotonic() < deadline:
            for node in list(pending):
                process = self._processes[node]
                if process.poll() is not None:
                    raise BrokerError(
                        f"Kafka node {node} exited with code {process.returncode} during start; "
                        f"last log lines:\n{tail(self.log_file_of(node))}\n"
                        f"{tail(self.node_dir(node) / 'stdout.log', 5)}"
                    )
                try:
                    metadata = probe(self._probe_settings(self.node_bootstrap(node)), 0.5)
                except BrokerUnreachableError:
                    continue
                if expect <= set(metadata.brokers):
                    pending.remove(node)
            if pending:
                time.sleep(0.2)
        if pending:
            raise BrokerError(
                f"Kafka node(s) {', '.join(map(str, pending))} did not answer Metadata within "
                f"{self.start_timeout_s:g} s; logs: "
                + ", ".join(str(self.log_file_of(n)) for n in pending)
            )
