"""Accounts configuration from the environment and the accounts file, for any integration."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from luabridge._config import describe_accounts, env_variable, load_accounts
from luabridge._errors import ConfigError, IntegrationError
from luabridge._registry import Account, AccountKey, AccountScheme, Secret

DEFAULT_URL = "https://api.demo.test/v1"


def normalize(text: str) -> str:
    if not text.startswith("https://"):
        raise ConfigError("must start with https://")
    return text.rstrip("/")


DEMO = SimpleNamespace(
    name="demo",
    accounts=AccountScheme(env_prefix="DEMO", default_url=DEFAULT_URL + "/", normalize_url=normalize,
                           token_aliases=("ACCESS_TOKEN",)),
)
OTHER = SimpleNamespace(
    name="other",
    accounts=AccountScheme(env_prefix="OTHER", default_url="https://other.test", normalize_url=normalize),
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory, so no real ~/.config/luabridge/accounts.toml is read."""
    return tmp_path


def load(home: Path, env: dict[str, str] | None = None, **options) -> dict[str, dict[str, Account]]:
    return load_accounts([DEMO], environ={"HOME": str(home), **(env or {})}, **options)


def accounts_file(home: Path, text: str, name: str = "accounts.toml") -> Path:
    path = home / name
    path.write_text(text)
    return path


def expect_error(home: Path, message: str, env: dict[str, str] | None = None, **options) -> None:
    with pytest.raises(ConfigError) as caught:
        load(home, env, **options)
    assert str(caught.value) == message


def test_the_default_account_always_exists(home):
    assert load(home) == {"demo": {"default": Account("demo", "default", DEFAULT_URL)}}


def test_environment_configures_default_and_named_accounts(home):
    accounts = load(home, {
        "DEMO_URL": "https://one.test",
        "DEMO_ACCESS_TOKEN": "t-default",
        "DEMO_WORK_URL": "https://work.test/",
        "DEMO_WORK_TOKEN": "t-work",
        "DEMO_SUPPORT_ACCESS_TOKEN": "t-support",
        "DEMO_DEBUG": "1",           # unrelated variables with the prefix are ignored
        "DEMO_EMPTY_TOKEN": "",      # an empty variable counts as unset
        "OTHER_TOKEN": "not ours",
    })["demo"]
    assert list(accounts) == ["default", "support", "work"]
    assert accounts["default"] == Account("demo", "default", "https://one.test", Secret("t-default"))
    assert accounts["work"] == Account("demo", "work", "https://work.test", Secret("t-work"))
    assert accounts["support"] == Account("demo", "support", DEFAULT_URL, Secret("t-support"))


def test_default_prefix_and_equal_duplicates_are_the_default_account(home):
    accounts = load(home, {"DEMO_TOKEN": "same", "DEMO_DEFAULT_TOKEN": "same", "DEMO_ACCESS_TOKEN": "same"})
    assert accounts["demo"] == {"default": Account("demo", "default", DEFAULT_URL, Secret("same"))}


def test_each_integration_reads_its_own_prefix(home):
    accounts = load_accounts([DEMO, OTHER], environ={"HOME": str(home), "OTHER_X_TOKEN": "t"})
    assert list(accounts["demo"]) == ["default"]
    assert accounts["other"]["x"] == Account("other", "x", "https://other.test", Secret("t"))


def test_conflicting_variables_are_an_error_that_hides_their_values(home):
    expect_error(home, "DEMO_ACCESS_TOKEN and DEMO_TOKEN set the token of account 'default' to different "
                       "values; keep one", {"DEMO_TOKEN": "secret-1", "DEMO_ACCESS_TOKEN": "secret-2"})


ALIAS_RULE = ("is not a valid account alias; use lower-case letters, digits and '_', not starting with a "
              "digit and not a Lua keyword")


@pytest.mark.parametrize(("variable", "alias"), [
    ("DEMO_2ND_TOKEN", "2nd"), ("DEMO_END_URL", "end"), ("DEMO__TOKEN", ""), ("DEMO_MY-WORK_URL", "my-work"),
])
def test_an_invalid_alias_in_the_environment(home, variable, alias):
    expect_error(home, f"{variable}: {alias!r} {ALIAS_RULE}", {variable: "https://x.test"})


def test_a_bad_url_names_its_variable(home):
    expect_error(home, "DEMO_WORK_URL: must start with https://", {"DEMO_WORK_URL": "ftp://x"})


def test_the_file_configures_accounts_with_inline_or_indirect_tokens(home):
    path = accounts_file(home, """
[demo.default]
url = "https://file.test"
token_env = "MY_DEMO_TOKEN"

[demo.work]
token = "t-inline"
""")
    accounts = load(home, {"MY_DEMO_TOKEN": "t-env"}, config_path=path)["demo"]
    assert accounts == {
        "default": Account("demo", "default", "https://file.test", Secret("t-env")),
        "work": Account("demo", "work", DEFAULT_URL, Secret("t-inline")),
    }


def test_the_environment_overrides_the_file_field_by_field(home):
    path = accounts_file(home, '[demo.work]\nurl = "https://file.test"\ntoken = "t-file"\n')
    accounts = load(home, {"DEMO_WORK_TOKEN": "t-env"}, config_path=path)["demo"]
    assert accounts["work"] == Account("demo", "work", "https://file.test", Secret("t-env"))


def test_where_the_file_is_found(home):
    named = accounts_file(home, '[demo.named]\ntoken = "t"\n', "named.toml")
    explicit = accounts_file(home, '[demo.explicit]\ntoken = "t"\n', "explicit.toml")
    xdg = home / "xdg" / "luabridge"
    xdg.mkdir(parents=True)
    (xdg / "accounts.toml").write_text('[demo.xdg]\ntoken = "t"\n')
    dotconfig = home / ".config" / "luabridge"
    dotconfig.mkdir(parents=True)
    (dotconfig / "accounts.toml").write_text('[demo.home]\ntoken = "t"\n')

    def aliases(env: dict[str, str], **options) -> list[str]:
        return list(load(home, env, **options)["demo"])

    assert aliases({}) == ["default", "home"]
    assert aliases({"XDG_CONFIG_HOME": str(home / "xdg")}) == ["default", "xdg"]
    assert aliases({"LUABRIDGE_CONFIG": str(named)}) == ["default", "named"]
    assert aliases({"LUABRIDGE_CONFIG": str(named)}, config_path=explicit) == ["default", "explicit"]


def test_an_explicitly_named_file_must_exist(home):
    missing = home / "nope.toml"
    expect_error(home, f"accounts file not found: {missing}", config_path=missing)
    expect_error(home, f"accounts file not found: {missing} (named by LUABRIDGE_CONFIG)",
                 {"LUABRIDGE_CONFIG": str(missing)})


def test_an_unreadable_file(home):
    expect_error(home, f"cannot read accounts file {home}: Is a directory", config_path=home)


FILE_ERRORS = [
    # file text, the message after the path
    ('[demo.work]\nurl https://x\n',
     ": invalid TOML: Expected '=' after a key in a key/value pair (at line 2, column 5)"),
    ('[demoo.work]\ntoken = "t"\n', ": unknown integration [demoo]; known: demo"),
    ('demo = 1\n', ": 'demo' must be a table of accounts such as [demo.default]"),
    ('[demo]\nurl = "https://x.test"\n',
     ": 'demo.url' must be a table of account settings such as [demo.default], not a string"),
    ('[demo.work]\ntokn = "t"\n',
     " [demo.work]: unknown key 'tokn'; did you mean 'token'? valid keys: rate_limit, token, token_env, url"),
    ('[demo.work]\nregion = "eu"\n',
     " [demo.work]: unknown key 'region'; valid keys: rate_limit, token, token_env, url"),
    ('[demo.work]\nurl = 5\n', " [demo.work]: 'url' must be a string, not an integer"),
    ('[demo.work]\ntoken = true\n', " [demo.work]: 'token' must be a string, not a boolean"),
    ('[demo.work]\ntoken = "t"\ntoken_env = "T"\n',
     " [demo.work]: give either 'token' or 'token_env', not both"),
    ('[demo.work]\ntoken = ""\n', " [demo.work]: 'token' is empty"),
    ('[demo.work]\ntoken_env = "MISSING_VAR"\n',
     " [demo.work]: token_env names MISSING_VAR, which is not set"),
    ('[demo.Work]\ntoken = "t"\n', f" [demo.Work]: 'Work' {ALIAS_RULE}"),
    ('[demo."my-work"]\ntoken = "t"\n', f" [demo.my-work]: 'my-work' {ALIAS_RULE}"),
    ('[demo.end]\ntoken = "t"\n', f" [demo.end]: 'end' {ALIAS_RULE}"),
    ('[demo.work]\nurl = "http://x.test"\n', " [demo.work] url: must start with https://"),
]


@pytest.mark.parametrize(("text", "message"), FILE_ERRORS)
def test_file_errors(home, text, message):
    path = accounts_file(home, text)
    expect_error(home, f"{path}{message}", config_path=path)


def test_no_message_or_repr_shows_a_token(home):
    path = accounts_file(home, '[demo.work]\ntoken = "t-file-secret"\nurl = "bad"\n')
    with pytest.raises(ConfigError) as caught:
        load(home, config_path=path)
    assert "t-file-secret" not in str(caught.value)
    accounts = load(home, {"DEMO_TOKEN": "t-env-secret"})
    assert "t-env-secret" not in repr(accounts) + describe_accounts(accounts)


def test_describe_accounts_lists_aliases_and_urls(home):
    accounts = load(home, {"DEMO_WORK_TOKEN": "t", "DEMO_WORK_URL": "https://work.test"})
    assert describe_accounts(accounts) == (
        "demo.default  https://api.demo.test/v1  (no token)\n"
        "demo.work     https://work.test  (token set)"
    )
    assert describe_accounts({}) == ""


@pytest.mark.parametrize(("alias", "suffix", "variable"), [
    ("default", "TOKEN", "DEMO_TOKEN"), ("work", "URL", "DEMO_WORK_URL"),
])
def test_env_variable(alias, suffix, variable):
    assert env_variable(DEMO.accounts, alias, suffix) == variable


def test_a_bad_default_url_is_reported_as_the_schemes(home):
    broken = SimpleNamespace(name="broken", accounts=AccountScheme(
        env_prefix="BROKEN", default_url="http://x.test", normalize_url=normalize))
    with pytest.raises(ConfigError) as caught:
        load_accounts([broken], environ={"HOME": str(home)})
    assert str(caught.value) == "the default URL of broken: must start with https://"


def test_a_file_that_is_not_utf8_names_the_byte(home):
    path = home / "accounts.toml"
    path.write_bytes(b'[demo.work]\ntoken = "caf\xe9"\n')
    expect_error(home, f"{path}: the accounts file is not valid UTF-8 (byte 24, line 2)", config_path=path)


def test_an_endless_or_huge_file_is_refused_after_reading_at_most_the_cap(home):
    expect_error(home, "/dev/zero: the accounts file is larger than 1 MiB", config_path="/dev/zero")
    path = accounts_file(home, "# " + "x" * (1024 * 1024) + "\n")
    expect_error(home, f"{path}: the accounts file is larger than 1 MiB", config_path=path)


@pytest.mark.parametrize(("text", "message"), [
    # Either would take the TOML parser minutes and gigabytes, or end in a RecursionError.
    ("a" + ".a" * 100_000 + " = 1\n",
     ": line 1 has more than 64 dots; accounts files need only short keys such as [name.alias]"),
    ("a = " + "[" * 100_000 + "\n", ": invalid TOML: arrays or tables nested too deeply"),
    ("a = " + "{b = " * 100_000 + "\n", ": invalid TOML: arrays or tables nested too deeply"),
])
def test_pathological_toml_is_refused_quickly(home, text, message):
    path = accounts_file(home, text)
    expect_error(home, f"{path}{message}", config_path=path)


BAD_TOKEN = "the token of account 'work' contains a control character or whitespace; copy it again without " \
            "spaces or line breaks"
TOKEN_FLAWS = ["\n", "\r\n", "\t", " ", "\x00", "\x1b", "\x7f", "\x85", "\u00a0", "\u2028"]


@pytest.mark.parametrize("flaw", TOKEN_FLAWS)
def test_a_token_with_whitespace_or_a_control_character_is_refused(home, flaw):
    token = f"t-sec{flaw}ret"
    expect_error(home, f"DEMO_WORK_TOKEN: {BAD_TOKEN}", {"DEMO_WORK_TOKEN": token})
    expect_error(home, f"DEMO_WORK_TOKEN: {BAD_TOKEN}", {"DEMO_WORK_TOKEN": f"t-secret{flaw}"})
    expect_error(home, f"MY_TOKEN: {BAD_TOKEN}", {"MY_TOKEN": token},
                 config_path=accounts_file(home, '[demo.work]\ntoken_env = "MY_TOKEN"\n'))
    path = accounts_file(home, f"[demo.work]\ntoken = {json.dumps(token)}\n")  # JSON escapes are TOML's too
    expect_error(home, f"{path} [demo.work] token: {BAD_TOKEN}", config_path=path)


@pytest.mark.parametrize("name", ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "my token", "2FA"])
def test_a_token_env_that_is_no_variable_name_is_not_echoed(home, name):
    path = accounts_file(home, f'[demo.work]\ntoken_env = "{name}"\n')
    expect_error(home, f"{path} [demo.work]: 'token_env' must name an environment variable (letters, digits "
                       "and '_'); to give the token itself, use 'token'", config_path=path)


def echo(text: str) -> str:
    raise ConfigError(f"cannot use {text!r} ({text.lower()})")


ECHO = SimpleNamespace(name="echo", accounts=AccountScheme(env_prefix="ECHO", default_url="", normalize_url=echo))


@pytest.mark.parametrize(("url", "shown"), [
    ("https://x.test/v2?token=tok%2Bone%2F2", "https://x.test/v2?[redacted]"),
    ("https://x.test/v2?access_token=tok+one/2", "https://x.test/v2?[redacted]"),
    ("https://Tok+One/2@x.test", "https://[redacted]@x.test"),
    ("https://agent:pass-word@x.test/v2", "https://[redacted]@x.test/v2"),
    ("https://x.test/TOK-TWO/v2#frag", "https://x.test/[redacted]/v2#[redacted]"),
])
def test_a_url_error_hides_every_token_and_the_urls_credentials(home, url, shown):
    environ = {"HOME": str(home), "DEMO_TOKEN": "tok+one/2", "ECHO_TOKEN": "tok-two", "ECHO_URL": url}
    with pytest.raises(ConfigError) as caught:
        load_accounts([DEMO, ECHO], environ=environ)
    assert str(caught.value) == f"ECHO_URL: cannot use '{shown}' ({shown.lower()})"
    assert caught.value.__cause__ is None


REGIONAL = SimpleNamespace(name="regional", accounts=AccountScheme(
    env_prefix="REGIONAL", default_url="https://regional.test", normalize_url=normalize,
    keys=(
        AccountKey("region", required=True, env_aliases=("ZONE",), description="the data centre, such as eu"),
        AccountKey("signing_key", secret=True),
        AccountKey("tier", default="free"),
    ),
))


def load_regional(home: Path, env: dict[str, str], **options) -> dict[str, Account]:
    return load_accounts([REGIONAL], environ={"HOME": str(home), **env}, **options)["regional"]


def test_a_scheme_without_keys_declares_url_and_token():
    assert [key.name for key in DEMO.accounts.keys] == ["url", "token", "rate_limit"]
    assert [key.name for key in REGIONAL.accounts.keys] == [
        "url", "token", "rate_limit", "region", "signing_key", "tier"]


def test_declared_keys_come_from_the_environment_into_settings(home):
    accounts = load_regional(home, {"REGIONAL_TOKEN": "t", "REGIONAL_REGION": "eu",
                                    "REGIONAL_WORK_ZONE": "us", "REGIONAL_WORK_SIGNING_KEY": "k-secret"})
    assert accounts["default"].settings == {"region": "eu", "tier": "free"}
    work = accounts["work"]
    assert work.settings == {"region": "us", "signing_key": Secret("k-secret"), "tier": "free"}
    assert work.settings["signing_key"].reveal() == "k-secret"
    assert "k-secret" not in repr(accounts)


def test_declared_keys_come_from_the_file_and_secrets_may_name_a_variable(home):
    path = accounts_file(home, """
[regional.work]
token = "t"
region = "ap"
signing_key_env = "MY_SIGNING_KEY"
tier = "gold"
""")
    work = load_regional(home, {"MY_SIGNING_KEY": "k-env", "REGIONAL_WORK_TIER": "platinum"}, config_path=path)["work"]
    assert work == Account("regional", "work", "https://regional.test", Secret("t"),
                           settings={"region": "ap", "signing_key": Secret("k-env"), "tier": "platinum"})


@pytest.mark.parametrize(("text", "message"), [
    ('[regional.work]\nregoin = "eu"\n', " [regional.work]: unknown key 'regoin'; did you mean 'region'? valid keys: "
     "rate_limit, region, signing_key, signing_key_env, tier, token, token_env, url"),
    ('[regional.work]\ntier_env = "X"\n', " [regional.work]: unknown key 'tier_env'; did you mean 'token_env'? "
     "valid keys: rate_limit, region, signing_key, signing_key_env, tier, token, token_env, url"),
    ('[regional.work]\nregion = "eu"\nsigning_key = "k"\nsigning_key_env = "K"\n',
     " [regional.work]: give either 'signing_key' or 'signing_key_env', not both"),
    ('[regional.work]\nregion = "eu"\nsigning_key_env = "NOT_SET"\n',
     " [regional.work]: signing_key_env names NOT_SET, which is not set"),
    ('[regional.work]\nregion = "eu"\nsigning_key = "k k"\n', " [regional.work] signing_key: the signing_key of "
     "account 'work' contains a control character or whitespace; copy it again without spaces or line breaks"),
    ('[regional.work]\ntoken = "t"\n',
     " [regional.work]: missing required key 'region' (the data centre, such as eu)"),
])
def test_declared_key_errors_in_the_file(home, text, message):
    path = accounts_file(home, text)
    with pytest.raises(ConfigError) as caught:
        load_regional(home, {}, config_path=path)
    assert str(caught.value) == f"{path}{message}"


def test_a_required_key_is_required_only_of_accounts_that_set_something(home):
    assert load_regional(home, {})["default"].settings == {"tier": "free"}
    with pytest.raises(ConfigError) as caught:
        load_regional(home, {"REGIONAL_WORK_TOKEN": "t"})
    assert str(caught.value) == ("account 'work' of regional needs 'region' (the data centre, such as eu); "
                                 "set REGIONAL_WORK_REGION")


@pytest.mark.parametrize(("keys", "message"), [
    ((AccountKey("Region"),), "account key 'Region' of BAD must be lower-case letters, digits and '_', starting "
                              "with a letter and not ending in '_env'"),
    ((AccountKey("key_env"),), "account key 'key_env' of BAD must be lower-case letters, digits and '_', "
                               "starting with a letter and not ending in '_env'"),
    ((AccountKey("tier"), AccountKey("tier")), "account keys of BAD repeat a name: url, token, rate_limit, tier, tier"),
    ((AccountKey("token"),), "the account key 'token' of BAD must be secret"),
])
def test_a_scheme_with_broken_keys_is_an_integration_error(keys, message):
    with pytest.raises(IntegrationError) as caught:
        AccountScheme(env_prefix="BAD", default_url="https://bad.test", normalize_url=normalize, keys=keys)
    assert str(caught.value) == message


def test_where_an_account_and_its_token_were_set(home):
    path = accounts_file(home, '[demo.filed]\ntoken = "t"\n[demo.named]\ntoken_env = "MY_T"\n'
                               '[demo.bare]\nurl = "https://bare.test"\n[demo.mixed]\nurl = "https://m.test"\n')
    accounts = load(home, {"MY_T": "t", "DEMO_MIXED_ACCESS_TOKEN": "t", "DEMO_ENV_URL": "https://e.test"},
                    config_path=path)["demo"]
    assert {alias: (account.source, account.token_setting) for alias, account in accounts.items()} == {
        "default": ("env", "DEMO_TOKEN"),
        "bare": ("file", f"{path} [demo.bare]"),
        "env": ("env", "DEMO_ENV_TOKEN"),
        "filed": ("file", f"{path} [demo.filed] token"),
        "mixed": ("env", "DEMO_MIXED_ACCESS_TOKEN"),
        "named": ("file", "MY_T"),
    }
