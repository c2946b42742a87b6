"""``eval``: LaunchDarkly evaluates the context; flagops reads the flag to say how (see ``bot.evaluation``).

::

    GET  /api/v2/flags/<p>/<flag>                             the flag (names, rules; 404 → suggestions)
    POST /api/v2/projects/<p>/environments/<e>/flags/evaluate  ?filter=query equals <flag>
         body: the context                                    → _value and reason (the answer)
    GET  the prerequisite flags and the segments the rules name  → flagops' own reading

Slack-free: ``bot.evaluation.listeners`` acks and hands over. The answer goes to the person who
asked alone. A context LaunchDarkly refuses gets its words and the usage; nothing else is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import error_text
from bot.evaluation.cards import EvaluationView, render_evaluation
from bot.launchdarkly import errors as ld_errors
from bot.lifecycle.models import Who
from bot.lifecycle.service import ChangeService
from commands.contexts import ContextError, context_of, individual_contexts
from commands.errors import CommandError
from commands.evaluation import Evaluation, evaluate
from commands.intents import ReservedCommand
from commands.registry import verb

log = logging.getLogger(__name__)

#: At most this many prerequisite flags and segments are read for flagops' own reading.
MAX_RELATED = 20


class EvaluationService:
    """Answers ``eval``."""

    def __init__(self, changes: ChangeService) -> None:
        self.changes = changes
        self.ld = changes.ld
        self.flags = changes.flags

    async def evaluate(self, who: Who, command: ReservedCommand) -> None:
        """Tell ``who`` what the context gets from the flag in the environment, and why.

        Raises:
            CommandError: no such flag or environment, or a context LaunchDarkly refuses.
            LaunchDarklyError: LaunchDarkly could not be read.
        """
        usage = verb("eval").usage
        assert command.flag is not None and command.environment is not None  # the parser requires them
        flag_key, env = command.flag, command.environment
        try:
            context = context_of(command.args[0])
            contexts = individual_contexts(context)
        except (ContextError, ValueError, IndexError) as error:
            raise CommandError(f"that is not a context: {error}", usage) from None
        project = command.project or await self.changes.project_for(who)
        flag = await self.flags.flag(project, flag_key, fresh=True)
        await self.flags.check_environment(project, env, flag)
        try:
            answers = await self.ld.evaluate_context(project, env, context, flag=flag_key)
        except ld_errors.InvalidRequest as error:
            raise CommandError(f"LaunchDarkly refused the context: {error.message}", usage) from None
        answer = next((a for a in answers if a.key == flag_key), None)
        if answer is None:
            await self.changes.tell(
                who,
                f":grey_question: LaunchDarkly did not evaluate `{flag_key}` in *{env}* "
                "(an archived flag is not evaluated).",
            )
            return
        related = await self._related(project, env, flag)
        local = _read_locally(flag, env, context, related)
        reason = answer.reason.document() if answer.reason is not None else {"kind": "UNKNOWN"}
        text, body = render_evaluation(
            EvaluationView(
                project=project,
                environment=env,
                flag=flag,
                contexts=contexts,
                value=answer.value,
                reason=reason,
                local=local,
                flags=related.flags,
                flag_url=self.flags.flag_url(flag, env),
            )
        )
        await self.changes.messenger.ephemeral(who.reply, text, body)

    async def _related(self, project: str, env: str, flag: dict[str, Any]) -> _Related:
        """The prerequisite flags (theirs too) and the segments their rules name, as far as readable."""
        related = _Related({str(flag.get("key")): flag}, {})
        pending = _prerequisites(flag, env)
        while pending and len(related.flags) < MAX_RELATED:
            key = pending.pop(0)
            if key in related.flags:
                continue
            try:
                other = await self.flags.flag(project, key)
            except (CommandError, ld_errors.LaunchDarklyError) as error:
                log.info("prerequisite %s of an evaluation could not be read: %s", key, error_text(error))
                continue
            related.flags[key] = other
            pending += _prerequisites(other, env)
        wanted = sorted({s for f in related.flags.values() for s in _segment_keys(f, env)})
        for key in wanted[:MAX_RELATED]:
            try:
                segment = await self.ld.get_segment(project, env, key)
            except ld_errors.LaunchDarklyError as error:
                log.info("segment %s of an evaluation could not be read: %s", key, error_text(error))
                continue
            related.segments[key] = segment.document()
        return related


@dataclass
class _Related:
    """The flags (the evaluated one and its prerequisites) and segments flagops' reading needs."""

    flags: dict[str, dict[str, Any]]
    segments: dict[str, dict[str, Any]]


def _read_locally(flag: dict[str, Any], env: str, context: Any, related: _Related) -> Evaluation | None:
    try:
        return evaluate(flag, env, context, flags=related.flags, segments=related.segments)
    except ContextError:
        return None


def _environment(flag: Mapping[str, Any], env: str) -> Mapping[str, Any]:
    config: Mapping[str, Any] = (flag.get("environments") or {}).get(env) or {}
    return config


def _prerequisites(flag: Mapping[str, Any], env: str) -> list[str]:
    return [str(p.get("key")) for p in _environment(flag, env).get("prerequisites") or []]


def _segment_keys(flag: Mapping[str, Any], env: str) -> set[str]:
    return {
        str(value)
        for rule in _environment(flag, env).get("rules") or []
        for clause in rule.get("clauses") or []
        if clause.get("op") == "segmentMatch"
        for value in clause.get("values") or []
    }
