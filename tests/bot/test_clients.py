"""The outbound client layer: the environment read once per host, the token held for a batch of sends."""

from __future__ import annotations

from bot.clients import get_client
from bot.clients.base import ApiSession


def test_proxies_and_the_ca_bundle_come_from_the_environment_once_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.county.example:3128")
    monkeypatch.setenv("NO_PROXY", "qyapi.weixin.qq.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/county-ca.pem")
    session = ApiSession()
    settings = session.merge_environment_settings("https://api.weixin.qq.com/cgi-bin/token", {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.county.example:3128"
    assert settings["verify"] == "/etc/ssl/county-ca.pem"
    bypassed = session.merge_environment_settings("https://qyapi.weixin.qq.com/cgi-bin/gettoken", {}, None, None, None)
    assert "https" not in bypassed["proxies"]
    # A call's own settings still win over the environment's.
    assert session.merge_environment_settings("https://api.weixin.qq.com/x", {}, None, False, None)["verify"] is False
    monkeypatch.delenv("HTTPS_PROXY")
    again = session.merge_environment_settings("https://api.weixin.qq.com/cgi-bin/other", {}, None, None, None)
    assert again["proxies"]["https"] == "http://proxy.county.example:3128"  # read once, for this host


def test_a_client_holds_its_token_for_a_batch_and_reads_redis_again_after_a_token_error(app, fake_api, redis):
    with app.app_context():
        client = get_client("mp")
        client.send("oHeld1", {"msgtype": "text", "text": {"content": "一"}})
        key = client.api._token_key
        first = redis.get(key).decode()
        fake_api.valid_tokens.add("TOKEN-OTHER")
        redis.set(key, "TOKEN-OTHER")  # another process refreshed it
        client.send("oHeld2", {"msgtype": "text", "text": {"content": "二"}})
        fake_api.valid_tokens.discard(first)  # now WeChat rejects the held one
        client.send("oHeld3", {"msgtype": "text", "text": {"content": "三"}})
    sends = [c for c in fake_api.calls if c.path == "/cgi-bin/message/custom/send"]
    used = [(c.body["touser"], c.args["access_token"]) for c in sends]
    assert used == [("oHeld1", first), ("oHeld2", first), ("oHeld3", first), ("oHeld3", "TOKEN-OTHER")]
    assert fake_api.tokens_issued == 1
