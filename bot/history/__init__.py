"""A flag's history: its changes wherever they were made, from LaunchDarkly's audit log.

``/flag history <flag> [<env>]``, the **History** button of ``show``, and the ⋯ menu of every
change card show a page of changes, newest first, each with who, when, what LaunchDarkly says it
was, the comment, and before → after (the two versions of the flag the entry holds, summarised by
the same code as the cards). A change made through flagops links to its card. **Older** shows the
next page.
"""
