"""Approval requests: the service, the approval cards, who reviews, and their listeners."""
