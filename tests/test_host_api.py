"""The host API refuses misuse when a Bridge is built or used, each with a one-line message that says what to
do; and what a host's choices (ask callbacks, closing, prestarting, time limits) do to a run."""

from __future__ import annotations

import dataclasses
import time

import pytest
import responses
from echo_integration import ECHO_TOKEN, NO_ARGS, echo_accounts
from echo_integration import integration as echo

from integrations.freshchat.simulator import Simulator
from luabridge import (
    Account,
    AccountKey,
    AccountScheme,
    Bridge,
    ConfigError,
    Function,
    Permissions,
    Secret,
    UsageError,
)

ECHO = "echo_integration"
FRESHCHAT = "integrations.freshchat"


def echo_account(alias: str = "default", **options) -> Account:
    return Account("echo", alias, "https://echo.invalid", Secret(ECHO_TOKEN), **options)


def refused(accounts, integrations=(ECHO,)) -> str:
    with pytest.raises(UsageError) as caught:
        Bridge(accounts, integrations=list(integrations), isolation=False)
    return str(caught.value)


# Accounts the host hands over


def test_accounts_given_as_a_list_are_refused():
    assert refused([echo_account()]) == (
        "accounts must map integration name -> alias -> Account, such as {'<name>': {'default': Account(...)}}, "
        "not a list"
    )
    assert refused({"echo": [echo_account()]}) == "accounts['echo'] must map alias -> Account, not a list"
    assert refused({"echo": {"default": "https://echo.invalid"}}) == (
        "accounts['echo']['default'] must be a luabridge.Account, not a str"
    )


def test_an_unknown_integration_is_refused_not_dropped():
    assert refused({"ecoh": {"default": echo_account()}}) == (
        "accounts name an unknown integration 'ecoh'; did you mean 'echo'? integrations: echo"
    )
    assert refused({"echo": {}}, integrations=()) == (
        "accounts name an unknown integration 'echo'; integrations: none"
    )


def test_a_plain_text_token_is_refused():
    account = Account("echo", "default", "https://echo.invalid", ECHO_TOKEN)
    message = refused({"echo": {"default": account}})
    assert message == (
        "accounts['echo']['default']: the token must be a luabridge.Secret, such as Secret(os.environ[...]), "
        "not a plain str, so that it never shows in a repr or a log"
    )
    assert ECHO_TOKEN not in message


def test_an_account_filed_under_another_alias_or_integration_is_refused():
    assert refused({"echo": {"work": echo_account("default")}}) == (
        "accounts['echo']['work'] holds the account echo.default; file each account under its own integration "
        "and alias"
    )
    stray = Account("other", "default", "https://echo.invalid", Secret(ECHO_TOKEN))
    assert refused({"echo": {"default": stray}}) == (
        "accounts['echo']['default'] holds the account other.default; file each account under its own "
        "integration and alias"
    )


def test_settings_must_be_declared_and_secret_ones_secret():
    scheme = AccountScheme(env_prefix="ECHO", default_url="https://echo.invalid", normalize_url=lambda url: url,
                           keys=(AccountKey("region"), AccountKey("signing_key", secret=True)))
    regional = dataclasses.replace(echo, accounts=scheme)
    assert refused({"echo": {"default": echo_account(settings={"regoin": "eu"})}}, [regional]) == (
        "accounts['echo']['default']: unknown setting 'regoin'; did you mean 'region'? settings of echo: "
        "rate_limit, region, signing_key"
    )
    assert refused({"echo": {"default": echo_account(settings={"signing_key": "k"})}}, [regional]) == (
        "accounts['echo']['default']: the signing_key must be a luabridge.Secret, such as Secret(os.environ[...]), "
        "not a plain str, so that it never shows in a repr or a log"
    )
    accepted = echo_account(settings={"region": "eu", "signing_key": Secret("k")})
    with Bridge({"echo": {"default": accepted}}, integrations=[regional], isolation=False) as bridge:
        assert bridge.catalog.accounts["echo"]["default"].settings["region"] == "eu"


@pytest.mark.parametrize(("url", "base"), [
    ("acme", "https://acme.freshchat.com/v2"),
    ("https://acme.freshchat.com", "https://acme.freshchat.com/v2"),
    ("acme.freshchat.com/v2/", "https://acme.freshchat.com/v2"),
])
def test_a_host_url_is_completed_by_the_integrations_scheme(url, base):
    accounts = {"freshchat": {"work": Account("freshchat", "work", url, Secret("t-work"))}}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock, \
            Bridge(accounts, integrations=[FRESHCHAT], isolation=False) as bridge:
        mock.get(f"{base}/agents/a-1", json={"id": "a-1"},
                 match=[responses.matchers.header_matcher({"Authorization": "Bearer t-work"})])
        result = bridge.run('return app.integrations.freshchat.work.get_agent("a-1").id')
    assert result.value == "a-1", result.error


def test_a_host_url_the_scheme_refuses_is_a_config_error_that_hides_the_token():
    accounts = {"freshchat": {"work": Account("freshchat", "work", "https://acme.freshchat.com/t-secret-1",
                                              Secret("t-secret-1"))}}
    with pytest.raises(ConfigError) as caught:
        Bridge(accounts, integrations=[FRESHCHAT], isolation=False)
    assert str(caught.value) == (
        "accounts['freshchat']['work'] url: unexpected path '/[redacted]'; give the account's host, optionally "
        "followed by /v2"
    )


# The ask callback


def ask_bridge(answer, *, isolation: bool = False, **options) -> Bridge:
    return Bridge(echo_accounts(), integrations=[ECHO], isolation=isolation,
                  permissions=Permissions(write="ask", ask=answer), **options)


STORE = 'return app.integrations.echo.store{name = "n"}'


@pytest.mark.parametrize("answer", ["no", "yes", 1, None, [True]])
def test_an_ask_answer_that_is_not_a_boolean_denies_the_call(answer):
    with ask_bridge(lambda request: answer) as bridge:
        result = bridge.run(STORE)
    assert result.error.type == "permission"
    assert result.error.message == (
        "script:1: echo.store: permission denied: the host's ask callback answered a non-boolean "
        f"({type(answer).__name__}), so the call is denied; nothing was sent"
    )
    assert [(call.ok, call.error) for call in result.calls] == [(False, result.error.message[len("script:1: "):])]


def test_a_declined_write_says_it_was_declined_unlike_a_policy_deny():
    with ask_bridge(lambda request: False) as bridge:
        declined = bridge.run(STORE)
        denied = bridge.run(STORE, permissions=Permissions(write="deny"))
    assert declined.error.message == "script:1: echo.store: permission denied: declined by the host; nothing was sent"
    assert denied.error.message == (
        "script:1: echo.store: permission denied: the host does not allow write functions; nothing was sent"
    )


@pytest.mark.parametrize("isolation", [False, True], ids=["in-process", "worker"])
def test_a_slow_ask_is_bounded_by_the_runs_deadline(isolation):
    def slow(request):
        time.sleep(3)
        return True

    with ask_bridge(slow, isolation=isolation, limits={"timeout": 1}) as bridge:
        started = time.monotonic()
        result = bridge.run(STORE)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert result.error.type == "timeout"
    message = "echo.store: the host's ask callback did not answer before the run's time limit; nothing was sent"
    assert result.error.message.splitlines()[0] == message
    assert [(call.ok, call.error) for call in result.calls] == [(None, message)]


def test_an_ask_that_says_yes_in_time_allows_the_call():
    asked = []
    with ask_bridge(lambda request: asked.append((request.function, dict(request.args))) or True) as bridge:
        assert bridge.run(STORE).value == {"stored": "n"}
    assert asked == [("echo.store", {"name": "n"})]


# Closing and prestarting


@pytest.mark.parametrize("isolation", [False, True], ids=["in-process", "worker"])
def test_run_after_close_raises(isolation):
    bridge = Bridge(echo_accounts(), integrations=[ECHO], isolation=isolation)
    assert bridge.run("return 1").value == 1
    bridge.close()
    for attempt in (lambda: bridge.run("return 1"), bridge.prestart):
        with pytest.raises(UsageError) as caught:
            attempt()
        assert str(caught.value) == "this bridge is closed; create a new one to run scripts"
    assert bridge._pool is None  # nothing was started again


def test_prestart_tops_up_to_n_waiting_workers():
    with Bridge(echo_accounts(), integrations=[ECHO]) as bridge:
        bridge.prestart(2)
        bridge.prestart(2)
        assert len(bridge._workers()._idle) == 2
        assert bridge.run("return 1").value == 1  # takes one, gives it back
        bridge.prestart(3)
        assert len(bridge._workers()._idle) == 3
        bridge.prestart(1)
        assert len(bridge._workers()._idle) == 3


# A time limit reached during a call


@pytest.mark.parametrize("isolation", [False, True], ids=["in-process", "worker"])
def test_a_time_limit_reached_in_host_work_is_a_timeout_with_the_call_in_flight(isolation):
    with Bridge(echo_accounts(), integrations=[ECHO], isolation=isolation, limits={"timeout": 0.5}) as bridge:
        result = bridge.run("return app.integrations.echo.nap{seconds = 5}")
    assert result.error.type == "timeout"
    assert [(call.function, call.ok) for call in result.calls] == [("echo.nap", None)]


@pytest.mark.parametrize("isolation", [False, True], ids=["in-process", "worker"])
def test_a_time_limit_reached_during_an_http_answer_is_a_timeout_with_the_call_in_flight(isolation):
    with Simulator(seed=0, faults="trickle=0.2") as sim:
        accounts = {"freshchat": {"default": Account("freshchat", "default", sim.url, Secret(sim.token))}}
        with Bridge(accounts, integrations=[FRESHCHAT], isolation=isolation, limits={"timeout": 1}) as bridge:
            started = time.monotonic()
            result = bridge.run('return app.integrations.freshchat.get_agent("agent-123")')
            elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert result.error.type == "timeout", result.error
    assert [(call.function, call.ok) for call in result.calls] == [("freshchat.get_agent", None)]


# Advice for an account without a token names where the account was configured


def run_unconfigured(bridge: Bridge, alias: str) -> str:
    result = bridge.run(f"return app.integrations.echo.{alias}.echo()")
    assert result.error.type == "config"
    return result.error.message.removeprefix("script:1: ")


def test_advice_names_environment_variables_only_for_accounts_from_the_environment(tmp_path):
    config = tmp_path / "accounts.toml"
    config.write_text('[echo.filed]\nurl = "https://filed.invalid"\n')
    environ = {"HOME": str(tmp_path), "ECHO_ENVIRONED_URL": "https://env.invalid"}
    with Bridge.from_env(environ=environ, config_path=config, integrations=[ECHO], isolation=False) as bridge:
        assert run_unconfigured(bridge, "environed") == (
            "echo.echo: account 'environed' of echo has no token; set ECHO_ENVIRONED_TOKEN (and "
            "ECHO_ENVIRONED_URL), or add it to the accounts file; nothing was sent"
        )
        assert run_unconfigured(bridge, "filed") == (
            f"echo.echo: account 'filed' of echo has no token; add 'token' or 'token_env' to {config} "
            "[echo.filed]; nothing was sent"
        )
    hosted = {"echo": {"bare": Account("echo", "bare", "https://echo.invalid")}}
    with Bridge(hosted, integrations=[ECHO], isolation=False) as bridge:
        assert run_unconfigured(bridge, "bare") == (
            "echo.echo: account 'bare' of echo has no token; the host running this script did not give it one; "
            "nothing was sent"
        )


# Function handlers


def test_a_function_without_handler_calls_the_clients_method_and_a_missing_one_is_the_integrations_bug(caplog):
    gone = Function(name="gone", summary="Gone.", description="A function its client lacks.", operation="read",
                    parameters=NO_ARGS)
    lacking = dataclasses.replace(echo, functions=(*echo.functions, gone))
    assert echo.functions[0].handler.__qualname__ == "client.echo"
    with Bridge(echo_accounts(), integrations=[lacking], isolation=False) as bridge:
        assert bridge.run("return app.integrations.echo.echo{text = 'x'}.args.text").value == "x"
        result = bridge.run("return app.integrations.echo.gone()")
    assert result.error.message.startswith(
        "script:1: echo.gone: internal error (a bug in the host; details are in its log)"
    )
    assert "IntegrationError: EchoClient has no method 'gone', which the function 'gone' calls since it gives no " \
           "handler" in caplog.text
