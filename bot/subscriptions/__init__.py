"""Channel subscriptions to flag changes made anywhere, and the App Home tab.

``/flag subscribe [<flag> | tag:<tag> | env:<env> | all] [--project p]`` in a channel,
``/flag subscriptions``, ``/flag unsubscribe ...``. LaunchDarkly POSTs each audit log entry to
``<FLAGOPS_PUBLIC_URL>/launchdarkly/webhook`` (signed: ``X-LD-Signature``; created by ``python -m
bot webhook-setup``); without a webhook the scheduler polls the audit log instead. Each matching
channel gets a card: who, what (before → after, summarised by the history's code), where, a link,
**History**. A change flagops made is told in its own card's thread instead.

``store`` (tables), ``service`` (subscribe, receive, match, notify, poll), ``webhook`` (the
signature, ``webhook-setup``), ``cards`` (Block Kit), ``home`` (the Home tab), ``listeners``.
"""
