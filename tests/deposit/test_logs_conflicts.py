"""The "with conflict" note in a record's message, and the DOIs the log's <dois_in_conflict> names from it."""

from __future__ import annotations

from agency.deposit.logs import conflict_note, dois_in_conflict


def test_the_note_and_its_dois_round_trip_with_parentheses_in_dois_and_more_than_shown():
    dois = ["10.1002/(SICI)1097-4636(199603)31:3<411::AID-JBM11>3.0.CO;2-G", "10.5555/b", "10.5555/c"]
    note = conflict_note(dois, 2)
    assert note.endswith("and 1 more)")
    assert dois_in_conflict("Added with conflict: same citation " + note) == dois[:2]
    assert dois_in_conflict("Added with conflict " + conflict_note(dois[1:], 10)) == dois[1:]
    assert dois_in_conflict("Successfully added") == [] and dois_in_conflict("") == []
