"""Open311 service codes and attributes as config/taxonomy.yaml declares them, and what the loader refuses."""

from __future__ import annotations

import pytest

from demand.taxonomy import SERVICE_CODE, TaxonomyError, load_taxonomy, taxonomy_from_dict

BASE = {"categories": [{"name": "城乡建设", "children": [{"name": "市政设施"}, {"name": "其他"}]}]}


def with_section(section) -> dict:
    return {**BASE, "open311": section}


def test_every_shipped_second_level_has_an_explicit_url_safe_code():
    taxonomy = load_taxonomy()
    subs = [sub for category in taxonomy.categories for sub in category.children]
    assert len(subs) > 100
    assert not [f"{s.parent}/{s.name}" for s in subs if s.code.startswith("x-")]
    assert all(SERVICE_CODE.match(s.code) for s in subs)
    assert len({s.code for s in subs}) == len(subs)
    assert taxonomy.service("urban.municipal-facilities").name == "市政设施"


def test_a_second_level_left_out_gets_a_derived_code_that_is_url_safe():
    taxonomy = taxonomy_from_dict(with_section({"城乡建设/市政设施": "urban.facilities"}))
    [facilities, other] = taxonomy.categories[0].children
    assert facilities.code == "urban.facilities"
    assert other.code.startswith("x-") and SERVICE_CODE.match(other.code)
    assert taxonomy_from_dict(BASE).categories[0].children[1].code == other.code  # stable for a name


def test_attributes_are_read_with_their_values():
    section = {
        "城乡建设/市政设施": {
            "code": "urban.facilities",
            "attributes": [
                {"code": "kind", "datatype": "singlevaluelist", "required": True, "values": {"a": "甲", "b": "乙"}},
                {"code": "count", "datatype": "number"},
            ],
        }
    }
    [kind, count] = taxonomy_from_dict(with_section(section)).service("urban.facilities").attributes
    assert (kind.required, kind.values) == (True, (("a", "甲"), ("b", "乙")))
    assert (count.datatype, count.required, count.description) == ("number", False, "count")


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"城乡建设/市政设施": "城建/路灯"}, "must match"),
        ({"城乡建设/市政设施": "Urban Lights"}, "must match"),
        ({"城乡建设/市政设施": "urban.a", "城乡建设/其他": "urban.a"}, "already used"),
        ({"城乡建设/不存在": "urban.b"}, "no such second level"),
        ({"城乡建设/市政设施": {"code": "urban.a", "attributes": [{"code": "Bad-Code"}]}}, "attribute code"),
        ({"城乡建设/市政设施": {"code": "urban.a", "attributes": [{"code": "k", "datatype": "image"}]}}, "datatype"),
        (
            {"城乡建设/市政设施": {"code": "urban.a", "attributes": [{"code": "k", "datatype": "singlevaluelist"}]}},
            "values",
        ),
        (
            {"城乡建设/市政设施": {"code": "urban.a", "attributes": [{"code": "k"}, {"code": "k"}]}},
            "repeat",
        ),
        (["urban.a"], "mapping"),
    ],
)
def test_the_loader_refuses_a_bad_open311_section(section, fragment):
    with pytest.raises(TaxonomyError, match=fragment):
        taxonomy_from_dict(with_section(section))
