"""One typed settings object, resolved from defaults < ``k2tui.toml`` < ``K2_*`` environment < CLI flags.

Every setting has a dotted key (``registry.port``), a TOML place (``[registry] port``) and an
environment variable (``K2_REGISTRY_PORT``). Resolution remembers where each value came from so
``k2tui config show`` can say why a value is what it is. Any unknown key or bad value is an error
that names the key, where it was set, and the form expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs

from k2tui import __version__

CONFIG_FILE_NAME = "k2tui.toml"
CONFIG_ENV = "K2_CONFIG"
ENV_PREFIX = "K2_"


@dataclass(frozen=True)
class Between:
    """An inclusive range constraint for a numeric setting."""

    low: float
    high: float


Port = Annotated[int, Between(1, 65535)]
# Ports the stack listens on stay below the kernel's ephemeral range, so no client socket can take them.
ClientPort = Annotated[int, Between(1024, 32767)]
Names = tuple[str, ...]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def default_home() -> Path:
    return Path(platformdirs.user_state_dir("k2tui"))


@dataclass(frozen=True)
class RegistrySettings:
    host: str = field(default="127.0.0.1", metadata=_help("address the Schema Registry listens on"))
    port: Port = field(default=18081, metadata=_help("port of the Schema Registry"))
    max_body_bytes: Annotated[int, Between(1024, 64 * 1024 * 1024)] = field(
        default=1024 * 1024, metadata=_help("largest request body the registry accepts")
    )


@dataclass(frozen=True)
class StackSettings:
    kafka_port: ClientPort = field(
        default=19092, metadata=_help("Kafka bootstrap port clients use (the proxy before the broker)")
    )
    s3_port: ClientPort = field(
        default=19000, metadata=_help("S3 port of the lake's object store clients use (through the proxy)")
    )
    prometheus_port: ClientPort = field(default=19090, metadata=_help("port of Prometheus"))
    proxy_control_port: ClientPort = field(
        default=19080, metadata=_help("control port of the proxy that injects network partitions")
    )
    internal_port_base: Annotated[int, Between(1024, 22700)] = field(
        default=19100,
        metadata=_help(
            "first of 42 ports the services use behind the proxy (broker, registry, two object stores)"
        ),
    )
    s3_access_key: str = field(default="k2admin", metadata=_help("access key of both object stores"))
    s3_secret_key: str = field(default="k2-local-secret", metadata=_help("secret key of both object stores"))
    warehouse_bucket: str = field(default="warehouse", metadata=_help("bucket holding the Iceberg warehouse"))
    catalog_uri: str = field(
        default="",
        metadata=_help(
            "Iceberg SQL catalog URI; empty means a SQLite file under home, else postgresql://..."
        ),
    )
    ready_timeout: Annotated[float, Between(1, 600)] = field(
        default=30.0, metadata=_help("seconds `up` waits for a service to become ready")
    )
    service_nice: Annotated[int, Between(0, 19)] = field(
        default=10,
        metadata=_help(
            "niceness of the local services: above 0 the cockpit and your shell get the CPU first"
            " when the pipeline fills every core; 0 shares it evenly"
        ),
    )
    backend: Literal["local", "docker", "external"] = field(
        default="local",
        metadata=_help(
            "what runs the services: local processes, Docker containers through Compose, or someone else"
            " (external: k2tui only reads them, at stack.host and the ports of these settings)"
        ),
    )
    host: str = field(
        default="127.0.0.1",
        metadata=_help("host of the services the external backend reads (the others use 127.0.0.1)"),
    )
    compose_project: str = field(
        default="k2",
        metadata=_help("Compose project of the docker backend; only containers with its label are touched"),
    )
    grafana_port: ClientPort = field(default=13000, metadata=_help("port of Grafana (docker backend)"))
    pipeline: Literal["host", "containers"] = field(
        default="host",
        metadata=_help(
            "where the docker backend runs the pipeline's processes (consumer, API, streams): on this host,"
            " or as containers of its compose project from stack.pipeline_image"
        ),
    )
    pipeline_image: str = field(
        default=f"k2tui:{__version__}",
        metadata=_help("the pipeline containers' image, from k2tui's Dockerfile (docker build -t IMAGE .)"),
    )


@dataclass(frozen=True)
class BinanceSettings:
    ws_url: str = field(
        default="wss://stream.binance.com:9443", metadata=_help("Binance WebSocket base URL (/ws, /stream)")
    )
    symbols: Names = field(default=("BTCUSDT", "ETHUSDT"), metadata=_help("Binance symbols to stream"))


@dataclass(frozen=True)
class KrakenSettings:
    ws_url: str = field(
        default="wss://ws.kraken.com", metadata=_help("Kraken WebSocket base URL (v1 at /, v2 at /v2)")
    )
    version: Literal["v1", "v2"] = field(default="v2", metadata=_help("Kraken WebSocket API version"))
    symbols: Names = field(default=("BTC/USD", "ETH/USD"), metadata=_help("Kraken pairs to stream"))


@dataclass(frozen=True)
class StreamSettings:
    silence_timeout: Annotated[float, Between(1, 3600)] = field(
        default=30.0, metadata=_help("seconds without any message before a stream reconnects")
    )
    backoff_initial: Annotated[float, Between(0.01, 60)] = field(
        default=0.5, metadata=_help("first reconnect delay in seconds; doubles on each failure")
    )
    backoff_max: Annotated[float, Between(0.1, 600)] = field(
        default=30.0, metadata=_help("longest reconnect delay in seconds (full jitter below it)")
    )
    connect_timeout: Annotated[float, Between(0.5, 120)] = field(
        default=10.0, metadata=_help("seconds to open a WebSocket and get the subscription answered")
    )
    max_message_bytes: Annotated[int, Between(1024, 64 * 1024 * 1024)] = field(
        default=1024 * 1024, metadata=_help("larger exchange messages go to the dead-letter queue")
    )
    partitions: Annotated[int, Between(1, 64)] = field(
        default=3, metadata=_help("partitions of each trades topic when k2tui creates it")
    )
    producer_buffer: Annotated[int, Between(10, 10_000_000)] = field(
        default=100_000, metadata=_help("trades held while Kafka or the registry is down")
    )
    source: Literal["auto", "live", "sim"] = field(
        default="auto",
        metadata=_help("where the stream services read: live, sim, or auto (live, else the simulator)"),
    )
    sim_rate: Annotated[float, Between(0.1, 10_000)] = field(
        default=10.0, metadata=_help("trades/s per symbol of the simulator service")
    )
    autostart: bool = field(default=False, metadata=_help("`up` also starts the stream services"))
    simulator_port: ClientPort = field(
        default=19095, metadata=_help("port of the simulator service (both exchanges and /control)")
    )
    binance_status_port: ClientPort = field(
        default=19096, metadata=_help("port of the Binance stream service's /metrics and /stats")
    )
    kraken_status_port: ClientPort = field(
        default=19097, metadata=_help("port of the Kraken stream service's /metrics and /stats")
    )


@dataclass(frozen=True)
class ConsumerSettings:
    service: bool = field(
        default=True, metadata=_help("`up` runs the Kafka → Iceberg consumer as a service of the stack")
    )
    group: str = field(default="k2-iceberg-writer-crypto-v2", metadata=_help("Kafka consumer group"))
    batch_size: Annotated[int, Between(1, 1_000_000)] = field(
        default=500, metadata=_help("records per Iceberg append (the seed's batch size)")
    )
    flush_interval: Annotated[float, Between(0.05, 3600)] = field(
        default=1.0, metadata=_help("seconds before a partial batch is written (bounds freshness)")
    )
    metrics_port: ClientPort = field(
        default=19094, metadata=_help("port of the consumer service's Prometheus /metrics")
    )
    large_gap: Annotated[int, Between(2, 1_000_000_000)] = field(
        default=1000, metadata=_help("trade ids missing at once from which a sequence gap counts as large")
    )
    shutdown_timeout: Annotated[float, Between(0.5, 60)] = field(
        default=7.0, metadata=_help("seconds SIGTERM allows for writing the last batch")
    )


@dataclass(frozen=True)
class DlqSettings:
    directory: str = field(
        default="",
        metadata=_help("dead-letter queue directory (*.jsonl); empty means <home>/dlq (the seed: /tmp/dlq)"),
    )


@dataclass(frozen=True)
class LakeSettings:
    # A commit rewrites metadata listing every snapshot: about 75 ms plus 0.15 ms per snapshot here, so
    # frequent expiry keeps commits fast; compaction keeps scans from opening thousands of files.
    expire_every: Annotated[float, Between(0, 7 * 86400)] = field(
        default=60.0, metadata=_help("seconds between the snapshot expiries a consumer runs; 0: never")
    )
    compact_every: Annotated[float, Between(0, 7 * 86400)] = field(
        default=600.0, metadata=_help("seconds between the small-file compactions a consumer runs; 0: never")
    )
    retain_snapshots: Annotated[int, Between(1, 1_000_000)] = field(
        default=10, metadata=_help("newest snapshots expiry always keeps")
    )
    snapshot_max_age: Annotated[float, Between(60, 365 * 86400)] = field(
        default=60.0,
        metadata=_help("seconds before expiry may remove a snapshot (an append in doubt needs 60)"),
    )
    compact_min_files: Annotated[int, Between(2, 1_000_000)] = field(
        default=10, metadata=_help("small files a partition needs before compaction rewrites them")
    )


@dataclass(frozen=True)
class ApiSettings:
    host: str = field(default="127.0.0.1", metadata=_help("address the HTTP query API listens on"))
    port: ClientPort = field(default=18000, metadata=_help("port of the HTTP query API"))
    max_limit: Annotated[int, Between(1, 100_000)] = field(
        default=1000, metadata=_help("most rows one API request may ask for (limit=)")
    )
    cache_mb: Annotated[int, Between(0, 65536)] = field(
        default=256, metadata=_help("MiB of recently read data files the API keeps decoded in memory")
    )


@dataclass(frozen=True)
class ValidateSettings:
    environment: str = field(
        default="local",
        metadata=_help("name of the environment checklists and baselines are kept for (local, staging…)"),
    )
    tolerance: Annotated[float, Between(0, 10)] = field(
        default=0.25,
        metadata=_help("how far a performance figure may fall behind its baseline before it is a regression"),
    )


@dataclass(frozen=True)
class TuiSettings:
    theme: Literal["dark", "light"] = field(
        default="dark", metadata=_help("the cockpit's theme at start (t toggles it)")
    )


@dataclass(frozen=True)
class Settings:
    home: Path = field(
        default_factory=default_home, metadata=_help("state directory: ports, pids, logs and data")
    )
    log_level: LogLevel = field(default="INFO", metadata=_help("log level of k2tui's own processes"))
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    stack: StackSettings = field(default_factory=StackSettings)
    binance: BinanceSettings = field(default_factory=BinanceSettings)
    kraken: KrakenSettings = field(default_factory=KrakenSettings)
    streams: StreamSettings = field(default_factory=StreamSettings)
    dlq: DlqSettings = field(default_factory=DlqSettings)
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    lake: LakeSettings = field(default_factory=LakeSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    validate: ValidateSettings = field(default_factory=ValidateSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)


def env_var_for(key: str) -> str:
    """``stack.kafka_port`` → ``K2_STACK_KAFKA_PORT``."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def setting_label(key: str) -> str:
    """How an error names a setting a user can change: the key and its environment variable."""
    return f"{key} ({env_var_for(key)})"


class SettingsError(ValueError):
    """A setting that is unknown or has a value of the wrong form."""


@dataclass(frozen=True)
class SettingSpec:
    key: str
    type: Any
    help: str

    @property
    def env_var(self) -> str:
        return env_var_for(self.key)

    @property
    def section(self) -> str:
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]


@dataclass(frozen=True)
class ResolvedSetting:
    key: str
    value: Any
    source: str
    env_var: str
    help: str


@dataclass(frozen=True)
class Resolution:
    settings: Settings
    entries: list[ResolvedSetting]
    config_file: Path | None


def setting_specs(cls: type = Settings, prefix: str = "") -> list[SettingSpec]:
    """Every leaf setting, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    specs: list[SettingSpec] = []
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            specs.extend(setting_specs(hint, key + "."))
        else:
            specs.append(SettingSpec(key, hint, f.metadata.get("help", "")))
    return specs


def describe_type(hint: Any) -> str:
    """The expected form of a value, as an error message should state it."""
    base, constraint = _unwrap(hint)
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(base))
    if base == Names:
        return "a list of names (a TOML array, or comma-separated text)"
    words = {int: "an integer", float: "a number", bool: "true or false", str: "text", Path: "a path"}
    text = words.get(base, getattr(base, "__name__", str(base)))
    if constraint is not None:
        text += f" from {constraint.low:g} to {constraint.high:g}"
    return text


def _unwrap(hint: Any) -> tuple[Any, Between | None]:
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        return base, next((e for e in extras if isinstance(e, Between)), None)
    return hint, None


def convert(spec: SettingSpec, raw: Any, *, from_text: bool) -> Any:
    """`raw` as the setting's type; text from the environment or a flag is parsed, TOML is type-checked."""
    base, constraint = _unwrap(spec.type)
    value = _parse(base, raw, from_text)
    if value is _INVALID:
        raise ValueError(f"expected {describe_type(spec.type)}, got {raw!r}")
    if constraint is not None and not constraint.low <= value <= constraint.high:
        raise ValueError(f"expected {describe_type(spec.type)}, got {raw!r}")
    return value


_INVALID = object()
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse(base: Any, raw: Any, from_text: bool) -> Any:
    if typing.get_origin(base) is Literal:
        choices = typing.get_args(base)
        if isinstance(raw, str) and raw.upper() in choices:
            return raw.upper()
        return raw if raw in choices else _INVALID
    if base is bool:
        if isinstance(raw, bool):
            return raw
        if from_text and isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        return _INVALID
    if base in (int, float):
        return _number(base, raw, from_text)
    if base is Path:
        if isinstance(raw, str | Path) and str(raw).strip():
            return Path(raw).expanduser()
        return _INVALID
    if base is str:
        return raw if isinstance(raw, str) else _INVALID
    if base == Names:
        return _names(raw, from_text)
    return _INVALID


def _names(raw: Any, from_text: bool) -> Any:
    """A non-empty list of names: a TOML array of strings, or comma-separated text from env or a flag."""
    if from_text and isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list | tuple) or not all(isinstance(item, str) for item in raw):
        return _INVALID
    names = tuple(item.strip() for item in raw if item.strip())
    return names or _INVALID


def _number(kind: type[int] | type[float], raw: Any, from_text: bool) -> Any:
    """An int or float setting; TOML must give a number (floats accept ints), text is parsed."""
    if isinstance(raw, bool):
        return _INVALID
    if isinstance(raw, kind) or (kind is float and isinstance(raw, int)):
        return kind(raw)
    if from_text and isinstance(raw, str) and _NUMBER_TEXT[kind].fullmatch(raw.strip()):
        return kind(raw.strip())
    return _INVALID


_NUMBER_TEXT = {int: re.compile(r"-?[0-9]+"), float: re.compile(r"-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")}


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """``--config`` wins, then ``$K2_CONFIG``, then ``./k2tui.toml`` when present."""
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"config file {explicit} does not exist; check the --config path")
        return explicit
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise SettingsError(f"config file {path} named by {CONFIG_ENV} does not exist")
        return path
    local = Path.cwd() / CONFIG_FILE_NAME
    return local if local.is_file() else None


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_toml(path: Path, specs: dict[str, SettingSpec]) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from error
    flat: dict[str, Any] = {}
    sections = {s.section for s in specs.values() if s.section}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for name, value in table.items():
            key = prefix + name
            if isinstance(value, dict) and key in sections:
                walk(value, key + ".")
            elif key in specs:
                flat[key] = value
            else:
                raise SettingsError(f"{path}: unknown setting '{key}'{_suggest(key, list(specs))}")

    walk(document, "")
    return flat


def resolve_settings(
    overrides: Mapping[str, tuple[Any, str]] | None = None,
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolution:
    """Resolve every setting. `overrides` maps a key to (value, label of the flag that set it)."""
    env = os.environ if env is None else env
    specs = {s.key: s for s in setting_specs()}
    path = find_config_file(config_file, env)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    if path is not None:
        for key, raw in _read_toml(path, specs).items():
            try:
                values[key] = convert(specs[key], raw, from_text=False)
            except ValueError as error:
                raise SettingsError(f"{path}: {key}: {error}") from error
            sources[key] = str(path)

    by_env = {s.env_var: s for s in specs.values()}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        spec = by_env.get(name)
        if spec is None:
            raise SettingsError(
                f"environment variable {name} is not a k2tui setting{_suggest(name, list(by_env))}; "
                "unset it or see `k2tui config show` for the known ones"
            )
        try:
            values[spec.key] = convert(spec, raw, from_text=True)
        except ValueError as error:
            raise SettingsError(f"environment variable {name} ({spec.key}): {error}") from error
        sources[spec.key] = f"env {name}"

    for key, (raw, label) in (overrides or {}).items():
        spec = specs.get(key)
        if spec is None:
            raise SettingsError(f"{label}: unknown setting '{key}'{_suggest(key, list(specs))}")
        try:
            values[key] = convert(spec, raw, from_text=isinstance(raw, str))
        except ValueError as error:
            raise SettingsError(f"{label}: {key}: {error}") from error
        sources[key] = label

    settings = _build(Settings, values, "")
    entries = [
        ResolvedSetting(s.key, _lookup(settings, s.key), sources.get(s.key, "default"), s.env_var, s.help)
        for s in specs.values()
    ]
    return Resolution(settings, entries, path)


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], values, key + ".")
        elif key in values:
            kwargs[f.name] = values[key]
    return cls(**kwargs)


def _lookup(settings: Settings, key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def settings_as_env(settings: Settings) -> dict[str, str]:
    """Every setting as the K2_* variable that gives it, so a k2tui child process resolves the same."""
    env = {}
    for spec in setting_specs():
        value = _lookup(settings, spec.key)
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env[spec.env_var] = text
    return env


def parse_assignment(text: str) -> tuple[str, str]:
    """``registry.port=18082`` → (``registry.port``, ``18082``), for ``--set``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SettingsError(f"--set {text!r}: expected KEY=VALUE, for example --set registry.port=18082")
    return key.strip(), value


def load_settings(**kwargs: Any) -> Settings:
    return resolve_settings(**kwargs).settings
