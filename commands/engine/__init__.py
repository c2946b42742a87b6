"""The semantic-patch engine: apply LaunchDarkly instructions to a flag document, as LaunchDarkly does.

Pure (no I/O). The sandbox stores what it returns, the bot previews a change with it when
LaunchDarkly refuses a dry run, and computes undo from before/after documents.

Public API::

    apply(flag, patch, *, other_flags=None, new_id=None, now_ms=None) -> new flag document
    touched_parts(patch) -> {(environmentKey, part), ...}

Layout: ``core`` runs a patch; ``rules``, ``targets``, ``prerequisites`` hold the
environment-scoped instructions, ``variations``, ``settings``, ``lifecycle`` the flag-level ones;
``parts`` maps instructions to the environment parts they touch. Each handler quotes the sentence
of ../shared/seeds/003_6aebeb99eb24c7fc.txt it implements, or says what was decided where the seed
is silent.
"""

from commands.engine.core import apply
from commands.engine.parts import touched_parts

__all__ = ["apply", "touched_parts"]
