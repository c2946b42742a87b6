"""What a context gets from a flag, and why: ``/flag eval <flag> <env> user:alice country=US``.

LaunchDarkly evaluates (``POST .../flags/evaluate``, the context as the body); its answer decides
the variation and the reason. flagops then reads the flag's rules itself (``commands.evaluation``)
to say which clauses matched and where a rollout put the context, which LaunchDarkly's answer does
not say; that part is labelled as flagops' own reading, and left out when it disagrees.
"""
