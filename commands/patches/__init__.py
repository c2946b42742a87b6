"""JSON patches (RFC 6902) and JSON merge patches (RFC 7386) on LaunchDarkly's documents, pure.

``json-patch`` and ``merge-patch`` change a flag document, ``project-patch`` a project document
(seeds 002/003 and 004). Before anything is sent, the bot applies the patch to the document it just
read, exactly as LaunchDarkly would (the ``jsonpatch`` library; RFC 7386 for merge patches), and
refuses it in words when it does not apply: a path that is not there, a ``test`` operation that
fails, a field LaunchDarkly sets itself, a field no flag has, a value of the wrong type::

    plan_flag_patch(before, shape, body)  -> FlagPatchPlan (after, environments, fields, kinds)
    translate(before, after, env, ...)    -> the equivalent semantic patch (approval requests)
    plan_project_patch(before, ops)       -> ProjectPatchPlan (after: tags deduplicated, sorted)
    inverse_ops(before, current, parts)   -> the JSON patch that sets those parts back (undo)

The sandbox refuses the same patches with LaunchDarkly's 400 (it calls :func:`check_flag_document`
and :func:`check_project_document`), so what the bot says and what LaunchDarkly does agree.
"""

from commands.patches.documents import (
    ENV_FIELDS,
    ENV_READ_ONLY,
    FLAG_FIELDS,
    FLAG_READ_ONLY,
    JSON_PATCH_ERRORS,
    PROJECT_FIELDS,
    PROJECT_READ_ONLY,
    Part,
    PatchRefusal,
    apply_json_patch,
    apply_merge_patch,
    check_flag_document,
    check_project_document,
    normalise_project,
    pointer,
)
from commands.patches.plans import (
    FlagPatchPlan,
    FlagShape,
    ProjectPatchPlan,
    merge_body,
    merge_sentences,
    operation_sentence,
    plan_flag_patch,
    plan_project_patch,
    project_changes,
    project_shows,
)
from commands.patches.translate import inverse_ops, parts_between, translate

__all__ = [
    "ENV_FIELDS",
    "ENV_READ_ONLY",
    "FLAG_FIELDS",
    "FLAG_READ_ONLY",
    "JSON_PATCH_ERRORS",
    "PROJECT_FIELDS",
    "PROJECT_READ_ONLY",
    "FlagPatchPlan",
    "FlagShape",
    "Part",
    "PatchRefusal",
    "ProjectPatchPlan",
    "apply_json_patch",
    "apply_merge_patch",
    "check_flag_document",
    "check_project_document",
    "inverse_ops",
    "merge_body",
    "merge_sentences",
    "normalise_project",
    "operation_sentence",
    "parts_between",
    "plan_flag_patch",
    "plan_project_patch",
    "pointer",
    "project_changes",
    "project_shows",
    "translate",
]
