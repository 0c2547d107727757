import pytest

from baton.runtime.settings import ConfigError, load_settings


def test_env_beats_yaml(tmp_path, monkeypatch):
    cfg = tmp_path / "baton.yaml"
    cfg.write_text("port: 9100\nlog_level: DEBUG\n")
    monkeypatch.setenv("BATON_CONFIG", str(cfg))
    monkeypatch.setenv("BATON_PORT", "9200")
    s = load_settings()
    assert s.port == 9200
    assert s.log_level == "DEBUG"


def test_default_database_is_sqlite_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("BATON_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BATON_HOME", str(tmp_path / "h"))
    assert load_settings().db_url == f"sqlite:///{tmp_path / 'h' / 'baton.db'}"


@pytest.mark.parametrize(
    "content, words",
    [
        ("port: lots\n", "port"),
        ("unknown_thing: 1\n", "unknown_thing"),
        ("database_url: mysql://x\n", "database_url"),
        ("broker_url: nats://x\n", "broker_url"),
        ("- a\n- b\n", "mapping"),
        ("port: [\n", "not valid YAML"),
    ],
)
def test_invalid_config_names_the_problem(tmp_path, monkeypatch, content, words):
    cfg = tmp_path / "baton.yaml"
    cfg.write_text(content)
    monkeypatch.setenv("BATON_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=words):
        load_settings()


def test_missing_config_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BATON_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()
