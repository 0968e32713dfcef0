"""Tests enforcement levels and policy properties: the pack's defaults, the repository's dev and prod config files,
overrides, and the one-sentence refusals of a bad config file."""

from __future__ import annotations

import json

import pytest

from policies.airflow_guard.engine import CONFIG_DIR, PolicyConfigError, load_config, settings

PROD_ONLY = ["rds-deletion-protection", "rds-multi-az"]


def levels(config) -> dict[str, str]:
    return {name: setting.level for name, setting in settings(config).items()}


def test_pack_default_is_advisory():
    """Without a config file every policy is advisory (as AWSGuard and compliance-policies default)."""
    assert set(levels({}).values()) == {"advisory"}


def test_prod_config_makes_every_policy_mandatory():
    """policies/config/prod.json: all mandatory, node groups across 3 zones."""
    chosen = settings(load_config(CONFIG_DIR / "prod.json"))
    assert {s.level for s in chosen.values()} == {"mandatory"}
    assert chosen["eks-node-groups-span-zones"].properties == {"minimumZones": 3}


def test_dev_config_is_advisory_without_the_prod_only_rules():
    """policies/config/dev.json: advisory, with Multi-AZ and deletion protection off."""
    chosen = levels(load_config(CONFIG_DIR / "dev.json"))
    assert sorted(name for name, level in chosen.items() if level == "disabled") == PROD_ONLY
    assert {level for name, level in chosen.items() if name not in PROD_ONLY} == {"advisory"}


@pytest.mark.parametrize("entry, level", [("advisory", "advisory"), ({"enforcementLevel": "disabled"}, "disabled"),
                                          ({"minimumDays": 14}, "mandatory")], ids=["string", "object", "properties-only"])
def test_a_policy_entry_overrides_all(entry, level):
    """A policy's own entry wins over `all`; an entry with properties only keeps `all`'s level."""
    chosen = settings({"all": "mandatory", "rds-backup-retention": entry})
    assert chosen["rds-backup-retention"].level == level
    assert chosen["rds-multi-az"].level == "mandatory"


def test_properties_default_from_the_schema():
    """Unset properties take the schema's defaults; set ones replace them."""
    assert settings({})["rds-backup-retention"].properties == {"minimumDays": 7}
    assert settings({"rds-backup-retention": {"minimumDays": 30}})["rds-backup-retention"].properties == {"minimumDays": 30}
    assert settings({})["aws-required-tags"].properties == {"tags": ["environment", "owner"]}


REFUSALS = {
    "unknown-policy": ({"rds-multiaz": "mandatory"},
                       "policy config key 'rds-multiaz' is not a policy of this pack (docs/policies.md lists them)."),
    "bad-level": ({"all": "strict"}, "all has enforcement level 'strict'; allowed: advisory, mandatory, remediate, disabled."),
    "unknown-property": ({"rds-multi-az": {"minimumDays": 3}},
                         "rds-multi-az: Additional properties are not allowed ('minimumDays' was unexpected) (its properties: none)."),
    "wrong-type": ({"rds-backup-retention": {"minimumDays": "seven"}},
                   "rds-backup-retention.minimumDays: 'seven' is not of type 'integer' (its properties: minimumDays)."),
    "out-of-range": ({"eks-node-groups-span-zones": {"minimumZones": 9}},
                     "eks-node-groups-span-zones.minimumZones: 9 is greater than the maximum of 6 (its properties: minimumZones)."),
}


@pytest.mark.parametrize("config, sentence", REFUSALS.values(), ids=REFUSALS.keys())
def test_bad_config_is_refused_with_one_sentence(config, sentence):
    """Each mistake is named with the key and what is allowed."""
    with pytest.raises(PolicyConfigError) as caught:
        settings(config)
    assert str(caught.value) == sentence


def test_config_file_must_be_a_json_object(tmp_path):
    """A file that is not a JSON object of policy names is refused by name."""
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(["all"]))
    with pytest.raises(PolicyConfigError, match=r"^broken.json must hold a JSON object of policy names.$"):
        load_config(path)
