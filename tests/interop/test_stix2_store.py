"""The OASIS stix2 library's TAXII data store, as partners' scripts use it, reads from and writes to the hub:
stix2 posts a STIX bundle (not an envelope), queries with its own Filters, and composes the hub with other
sources."""

from __future__ import annotations

import json

import stix2
from stix2 import CompositeDataSource, Filter, MemorySource, TAXIICollectionSource, TAXIICollectionStore
from taxii2client.v21 import Collection, Server

from tearline import markings
from tests.conftest import Hub
from tests.interop.test_taxii2_client import assert_valid


def _collection(hub: Hub, member: str, token: str) -> Collection:
    """The intel collection as a partner's script finds it: through discovery (taxii2-client wants its id)."""
    server = Server(f"{hub.url}/taxii2/", user=member, password=token)
    found: Collection = next(c for c in server.api_roots[0].collections if c.alias == "intel")
    return found


def _graph() -> list[stix2.base._STIXBase]:
    actor = stix2.ThreatActor(name="Islamic State Khorasan Province", aliases=["ISKP"],
                              threat_actor_types=["terrorist"])
    channel = stix2.Indicator(name="ISKP propaganda channel", pattern="[url:value = 'https://t.me/example']",
                              pattern_type="stix", valid_from="2024-01-01T00:00:00Z",
                              object_marking_refs=[markings.TLP2["green"][0]])
    domain = stix2.DomainName(value="iskp-example.org")
    return [actor, channel, domain, stix2.Relationship(channel, "indicates", actor),
            stix2.Relationship(channel, "related-to", domain)]


def test_stix2_taxii_store_writes_a_bundle_and_reads_it_back(hub: Hub, tokens: dict[str, str]) -> None:
    graph = _graph()
    store = TAXIICollectionStore(_collection(hub, "state-a", tokens["state-a"]))
    # a Bundle is posted as it is, in one request (a plain list, stix2 posts one object at a time, and the
    # indicator would arrive before the relationship that puts it in the compact's scope)
    store.add(stix2.Bundle(objects=graph))
    for obj in graph:
        got = store.get(obj.id)
        assert got is not None and json.loads(got.serialize()) == json.loads(obj.serialize())
        assert_valid(json.loads(got.serialize()))
    indicators = store.query([Filter("type", "=", "indicator")])
    assert [i.id for i in indicators] == [graph[1].id]
    rels = store.relationships(graph[0])
    assert {r.id for r in rels} == {graph[3].id}
    # a GREEN reader gets what its TLP allows through the same library
    ngo = TAXIICollectionSource(_collection(hub, "ngo-c", tokens["ngo-c"]))
    assert ngo.get(graph[1].id).id == graph[1].id


def test_stix2_composite_source_queries_the_hub_with_a_local_source(hub: Hub, tokens: dict[str, str]) -> None:
    graph = _graph()
    TAXIICollectionStore(_collection(hub, "state-a", tokens["state-a"])).add(stix2.Bundle(objects=graph))
    local = MemorySource(stix_data=[stix2.Indicator(name="local only", pattern="[ipv4-addr:value = '198.51.100.7']",
                                                    pattern_type="stix", valid_from="2024-01-01T00:00:00Z")])
    both = CompositeDataSource()
    both.add_data_sources([TAXIICollectionSource(_collection(hub, "state-b", tokens["state-b"])), local])
    names = {i.name for i in both.query([Filter("type", "=", "indicator")])}
    assert names == {"ISKP propaganda channel", "local only"}
    assert both.get(graph[0].id).name == "Islamic State Khorasan Province"
