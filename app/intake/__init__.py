"""Intake: turning helpdesk tickets and customer emails into return cases or suggestions."""
