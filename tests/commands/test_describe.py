"""The describer: one plain sentence per instruction, with names instead of IDs, for every kind."""

from __future__ import annotations

import re

import pytest

from commands import ChangeCommand, describe, parse, resolve
from commands.demo import demo_flags
from commands.instructions import SemanticPatch
from tests.commands.test_kinds_reachable import CASES

FLAGS = demo_flags()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


def sentences(text: str) -> list[str]:
    cmd = parse(text)
    assert isinstance(cmd, ChangeCommand)
    return describe(resolve(cmd, FLAGS[cmd.flag], flags=FLAGS), FLAGS[cmd.flag], flags=FLAGS)


def test_the_sentences_of_the_issue() -> None:
    assert sentences("on new-checkout production") == ["Turn targeting ON in production"]
    assert sentences("rollout express-shipping test 10% true 90% false") == [
        "Serve true to 10% and false to 90% of users, by key"
    ]
    assert sentences("target new-checkout test alice,bob -> true") == [
        "Add user targets alice, bob to Enabled (true)"
    ]


def test_rules_clauses_and_rollouts_read_as_conditions() -> None:
    assert sentences(
        'add rule pricing-page test named "Canada" if country in CA,US and organization.tier >= 3 '
        "serve 25% v2 75% v1 by email kind organization before rule 1"
    ) == [
        'Add a rule "Canada" before rule 1 (Beta testers): if country is one of CA, US and organization.tier '
        "is at least 3, serve New pricing (v2) to 25% and Old pricing (v1) to 75% of organization contexts, "
        "by email"
    ]
    assert sentences("remove values pricing-page test rule 2 clause country NL") == [
        'Remove NL from the clause "country is one of DE, FR, NL" in rule 2 (EU customers)'
    ]
    assert sentences("remove clause pricing-page test rule 2 clause plan") == [
        "Remove from rule 2 (EU customers): plan is not free"
    ]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text[:50] for text, _ in CASES])
def test_every_kind_has_a_sentence_without_ids(text: str, expected: object) -> None:
    said = sentences(text)
    assert len(said) == len(expected)  # type: ignore[arg-type]
    for sentence in said:
        assert sentence and not UUID.search(sentence), sentence


def test_unknown_ids_are_shown_rather_than_hidden() -> None:
    patch = SemanticPatch.model_validate(
        {
            "environmentKey": "test",
            "instructions": [
                {"kind": "removeRule", "ruleId": "r-404"},
                {"kind": "clearTargets", "variationId": "v-404"},
            ],
        }
    )
    assert describe(patch, FLAGS["new-checkout"]) == [
        "Remove rule r-404",
        "Remove every individual target from variation v-404",
    ]
