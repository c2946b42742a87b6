"""Who may change what: the policy file, channel settings, undo's listeners."""
