"""Every input error is a 4xx with a message: out-of-range ids, offsets and dates, and, walked by
Hypothesis, arbitrary values for every parameter of the staff API and Open311. Never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.broadcasts import auth, token_for
from tests.web.console.helpers import signed_in


@pytest.fixture
def api(region):
    return region.test_client(), auth(token_for(region, "admin", "990100"))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/tickets/99999999999999999999999", 404),
        ("/api/tickets/2147483648", 404),
        ("/api/tickets/0", 404),
        ("/api/tickets?offset=99999999999999999999", 400),
        ("/api/tickets?offset=-1", 400),
        ("/api/tickets?limit=abc", 400),
        ("/api/tickets?since=0001-01-05T00:00:00%2B00:00", 400),
        ("/api/tickets?until=9999-12-31T23:59:59-14:00", 400),
        ("/api/stats?to=0001-01-05T00:00:00%2B00:00", 400),
        ("/api/stats?from=0001-01-01T00:00:00%2B00:00", 400),
        ("/api/stats?to=2026-01-05T00:00:00", 400),
        ("/open311/v2/requests.json?start_date=0001-01-05T00:00:00%2B00:00", 400),
    ],
)
def test_out_of_range_inputs_are_client_errors_with_a_message(api, path, status):
    client, headers = api
    response = client.get(path, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    if path.startswith("/api/"):
        assert response.get_json().get("message")


def test_actions_on_a_huge_id_are_404(api):
    client, headers = api
    response = client.post("/api/tickets/99999999999999999999999/actions", json={"action": "sign"}, headers=headers)
    assert response.status_code == 404
    response = client.post("/api/tickets/1/actions", json={"action": "merge", "into": 10**30}, headers=headers)
    assert response.status_code in (400, 404)


def test_console_dates_and_ids_out_of_range(region):
    client, _ = signed_in(region, "chenlx", "admin", "990100")
    assert client.get("/console/tickets/99999999999999999999999").status_code == 404
    for query in ("from=0001-01-05&to=0001-01-10", "to=9999-12-31", "from=2026-13-01"):
        response = client.get(f"/console/dashboard?{query}")
        assert response.status_code == 200 and "年份在" in response.get_data(as_text=True)
        assert client.get(f"/console/export/ledger.xlsx?{query}").status_code == 200
    assert client.get("/console/?page=99999999999999999999&per_page=-5").status_code == 200


_texts = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0001-01-05T00:00:00+00:00", "9999-12-31", "\r\n", "%00", "1e309", "NaN", "-0", "'; --"]),
)
_values = st.one_of(_texts, st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=3))
API_ARGS = ("status", "category", "urgency", "grid", "owner", "channel", "number", "since", "until", "limit", "offset")


def test_hypothesis_walks_the_apis_parameters_and_never_gets_a_5xx(region):
    client = region.test_client()
    headers = auth(token_for(region, "staff", "990101"))
    key = token_for(region, "staff", "990101")
    seen = {"n": 0}

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(
        args=st.dictionaries(st.sampled_from(API_ARGS), _texts, max_size=4),
        stats=st.dictionaries(st.sampled_from(("region", "from", "to")), _texts, max_size=3),
        open311=st.dictionaries(
            st.sampled_from(("service_request_id", "service_code", "start_date", "end_date", "status")),
            _texts,
            max_size=3,
        ),
        ticket_id=st.one_of(st.integers(min_value=-5, max_value=10**25).map(str), _texts),
        body=st.dictionaries(st.sampled_from(("action", "note", "node", "into", "handlers", "member")), _values),
    )
    def walk(args, stats, open311, ticket_id, body):
        seen["n"] += 1
        for response in (
            client.get("/api/tickets", query_string=args, headers=headers),
            client.get("/api/stats", query_string=stats, headers=headers),
            client.get("/open311/v2/requests.json", query_string={**open311, "api_key": key}),
            client.get(f"/api/tickets/{ticket_id}", headers=headers),
            client.post("/api/tickets/1/actions", json=body, headers=headers),
        ):
            assert response.status_code < 500, (response.request.url, body, response.get_data()[:300])
            if response.status_code >= 400 and response.is_json and response.request.path.startswith("/api/"):
                assert (response.get_json() or {}).get("message") or response.status_code in (401, 405)

    walk()
    assert seen["n"] >= 100
