"""Settings from environment variables (BATON_*) and an optional `baton.yaml`.

Precedence: environment > baton.yaml > defaults. The YAML file is looked up in
`BATON_CONFIG`, else `./baton.yaml`, else `$BATON_HOME/baton.yaml`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from baton.sense.normalize import FieldLimits
from baton.sense.receivers import SourceConfig


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the problem."""


BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATON_", extra="forbid")

    home: Path = Field(default=Path(".baton"), description="Data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///$BATON_HOME/baton.db"
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis:// or amqp://); unset runs tasks in-process",
    )
    task_queue: str = Field(default="baton", description="Celery queue name", min_length=1)
    execution_lease_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A running execution whose worker has not beaten for this long is "
        "taken over (resumed or interrupted)",
    )
    runbooks_dir: Path | None = Field(default=None, description="Runbook YAML directory")
    correlation_file: Path | None = Field(
        default=None,
        description="correlation.yaml (holds, flapping, inhibition); "
        "default $BATON_HOME/correlation.yaml if present",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    task_workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    body_budget_bytes: int = Field(
        default=100_000_000,
        ge=1024,
        description="Memory all request bodies being received may hold together; past it "
        "a request is answered 503 with Retry-After",
    )
    body_min_rate_bps: int = Field(
        default=8192,
        ge=1,
        description="A body arriving slower than this many bytes a second (after "
        "body_grace_s) is dropped with 408",
    )
    body_grace_s: float = Field(
        default=2.0, gt=0, le=600, description="Time a body may take before its rate counts"
    )
    max_labels: int = Field(default=128, ge=1, description="Labels one alert or event may have")
    max_label_key_bytes: int = Field(default=256, ge=16, description="UTF-8 bytes per label name")
    max_label_value_bytes: int = Field(
        default=16 * 1024, ge=64, description="UTF-8 bytes per label value"
    )
    max_annotations_bytes: int = Field(
        default=64 * 1024, ge=256, description="UTF-8 bytes of one alert's annotations in all"
    )
    sources: dict[str, SourceConfig] = Field(
        default_factory=dict,
        description="Named senders: {name: {format, signing_secret, signature_header}}",
    )
    inbox_max_age_s: int = Field(
        default=7 * 86400, ge=60, description="Keep processed raw events this long"
    )
    inbox_max_events: int = Field(
        default=1_000_000, ge=1, description="Keep at most this many processed raw events"
    )
    drain_slice_s: float = Field(
        default=0.1,
        gt=0,
        le=5,
        description="Target length of one processing transaction: slices are sized to it",
    )
    drain_slice_events: int = Field(
        default=2000, ge=1, description="Most events one processing slice takes"
    )
    intake_max_lag_s: float = Field(
        default=15.0,
        gt=0,
        description="Past this processing lag (age of the oldest unprocessed event) intake "
        "answers 503 with Retry-After instead of acknowledging",
    )
    intake_max_backlog: int = Field(
        default=200_000,
        ge=1,
        description="Past this many unprocessed events intake answers 503 with Retry-After",
    )
    metrics_public: bool = Field(
        default=False, description="Serve /metrics without a token (for simple scrapers)"
    )
    url: str = Field(default="http://127.0.0.1:8000", description="API the CLI talks to")
    token: SecretStr | None = Field(default=None, description="Bearer token for the CLI")
    smtp_host: str | None = Field(default=None, description="Mail relay for email: channels")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="baton@localhost", description="Sender of notifications")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP session with TLS")
    smtp_username: str | None = Field(
        default=None, description="SMTP login, if the relay wants one"
    )
    smtp_password_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="NAME of the secret holding the SMTP password (secrets file or "
        "BATON_SECRET_<NAME>); the password itself never sits in settings",
    )

    # --- the service desk (docs/servicedesk.md) ------------------------------------------
    kb_dir: Path | None = Field(
        default=None, description="Knowledge-base Markdown directory; default $BATON_HOME/kb"
    )
    desk_smtp_listen: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.:\[\]-]+:\d{1,5}$",
        description="host:port the inbound SMTP listener accepts ticket mail on",
    )
    desk_burst_size: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Similar open tickets within the window that raise a TicketBurst Event "
        "for correlation (0: off)",
    )
    desk_burst_window_s: int = Field(default=1800, ge=60, le=86_400)
    desk_burst_overlap: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Word overlap (Jaccard) that makes two alike"
    )
    imap_host: str | None = Field(default=None, description="Mailbox polled for ticket mail")
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_ssl: bool = Field(default=True, description="IMAP over TLS (port 993)")
    imap_username: str | None = Field(default=None)
    imap_password_secret: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_]{1,64}$", description="NAME of the IMAP password"
    )
    ldap_url: str | None = Field(default=None, description="Directory for self-service")
    ldap_base_dn: str = Field(default="", description="Where accounts are searched")
    ldap_bind_dn: str = Field(default="", description="Service account that changes them")
    ldap_password_secret: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_]{1,64}$", description="NAME of its password"
    )
    ldap_user_attr: str = Field(default="uid", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
    ldap_quota_attr: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$",
        description="Account attribute holding the disk quota in GB (disk-quota runbook)",
    )
    ldap_quota_class: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$",
        description="Auxiliary object class the quota attribute needs, added when missing",
    )
    ldap_software_base: str | None = Field(
        default=None, description="Branch of software entitlement groups (software runbook)"
    )
    # approved answers to generic-webhook chats are POSTed there as JSON {conversation,
    # ticket, text}; unset: they stay on the ticket
    desk_chat_reply_url: str | None = Field(default=None, pattern=r"^https?://")
    slack_signing_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="NAME of the Slack app's signing secret: checked on its events (chat "
        "intake) and block actions (approvals from chat); unset: both are off",
    )

    # --- the copilot (docs/copilot.md) ---
    llm_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="OpenAI-compatible chat-completions base URL (e.g. http://127.0.0.1:11434"
        "/v1); unset: the copilot works offline",
    )
    llm_model: str = Field(default="llama3.1", description="Model name sent to the LLM server")
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer key for the LLM")
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    slack_users: dict[str, str] = Field(
        default_factory=dict, description="Slack user id -> Baton user name (JSON)"
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        pattern=r"^https?://",
        description="Base of Slack's Web API (chat.postMessage is called under it)",
    )
    slack_bot_token_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="NAME of the Slack bot token that posts approval messages and approved "
        "answers into a ticket's Slack thread (chat.postMessage); unset: neither is posted",
    )
    slack_channel: str = Field(
        default="", description="Channel approval messages go to (posted by themselves when set)"
    )
    slack_response_prefix: str = Field(
        default="https://hooks.slack.com/",
        description="Only response_url values under this prefix are answered",
    )

    audit_key_file: Path | None = Field(
        default=None,
        description="Keyring that signs audit records (`key_id hex-key` lines, newest "
        "last); default $BATON_HOME/audit.key, created 0600 on first start. Keep it out "
        "of the database's backups",
    )
    audit_witness: bool = Field(
        default=True, description="Copy the audit head to an append-only witness file"
    )
    audit_witness_file: Path | None = Field(
        default=None, description="Witness file; default $BATON_HOME/audit-witness.jsonl"
    )
    audit_witness_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Webhook that receives each witness entry (POST JSON) on the heartbeat",
    )
    audit_witness_every: int = Field(
        default=100, ge=1, description="Appends between witness file entries (besides ticks)"
    )

    # live detection (issue 15): metric and log intake
    syslog_port: int | None = Field(
        default=None, ge=1, le=65535, description="UDP and TCP port `baton serve` takes syslog on"
    )
    pull_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Prometheus HTTP API to pull series from"
    )
    pull_queries: list[str] = Field(
        default_factory=list, description="PromQL expressions pulled on each heartbeat"
    )
    pull_step_s: float = Field(default=60.0, gt=0, description="Resolution of pulled series")
    watch_max_series: int = Field(
        default=5000, ge=1, description="Series live detection keeps state for (~13 KB each)"
    )
    watch_state_file: Path | None = Field(
        default=None, description="Where detector state is saved (default HOME/detectors.npz)"
    )
    watch_save_s: float = Field(
        default=300.0, ge=0, description="Seconds between saves of detector state (0: never)"
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str | None) -> str | None:
        if value and not value.startswith(BROKER_SCHEMES):
            raise ValueError("must start with redis://, rediss://, amqp:// or amqps://")
        return value or None

    @model_validator(mode="after")
    def _budget_holds_a_body(self) -> Settings:
        if self.body_budget_bytes < self.max_body_bytes:
            raise ValueError("body_budget_bytes must be at least max_body_bytes")
        return self

    @property
    def field_limits(self) -> FieldLimits:
        """What one signal may carry (the receivers refuse more, naming the field)."""
        return FieldLimits(
            max_labels=self.max_labels,
            max_label_key_bytes=self.max_label_key_bytes,
            max_label_value_bytes=self.max_label_value_bytes,
            max_annotations_bytes=self.max_annotations_bytes,
        )

    @property
    def db_url(self) -> str:
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'baton.db').resolve()}"

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.home / "audit.key"

    @property
    def audit_witness_path(self) -> Path | None:
        if not self.audit_witness:
            return None
        return self.audit_witness_file or self.home / "audit-witness.jsonl"

    @property
    def correlation_path(self) -> Path:
        return self.correlation_file or self.home / "correlation.yaml"

    @property
    def watch_state_path(self) -> Path:
        return self.watch_state_file or self.home / "detectors.npz"

    @property
    def kb_path(self) -> Path:
        return self.kb_dir or self.home / "kb"

    @property
    def runbooks_path(self) -> Path:
        """Runbook directory: configured, else ./runbooks, else the checkout's catalogue."""
        if self.runbooks_dir is not None:
            return self.runbooks_dir
        local = Path("runbooks")
        if local.is_dir():
            return local
        return Path(__file__).resolve().parents[3] / "runbooks"


def _yaml_path() -> Path | None:
    explicit = os.environ.get("BATON_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"BATON_CONFIG points at {path}, which is not a file")
        return path
    for candidate in (
        Path("baton.yaml"),
        Path(os.environ.get("BATON_HOME", ".baton")) / "baton.yaml",
    ):
        if candidate.is_file():
            return candidate
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of setting: value at the top level")
    return data


def _source_of(loc: tuple[Any, ...], env_keys: set[str]) -> str:
    """Name a bad setting the way the user wrote it: BATON_X if it came from the env."""
    name = ".".join(str(p) for p in loc) or "settings"
    return f"BATON_{name.upper()}" if name in env_keys else name


def load_settings(**overrides: Any) -> Settings:
    """Build settings; raise ConfigError naming the bad setting."""
    path = _yaml_path()
    file_values = _read_yaml(path) if path else {}
    env_keys = {k[len("BATON_") :].lower() for k in os.environ if k.startswith("BATON_")}
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        problems = "; ".join(
            f"{_source_of(err['loc'], env_keys)}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()


def known_secrets(settings: Settings) -> list[SecretStr]:
    """Every secret value the settings hold, so text leaving the process can be
    redacted of them (the copilot's model calls)."""
    return [v for v in vars(settings).values() if isinstance(v, SecretStr)]
