"""A local SMTP catcher for development and tests (in the spirit of MailHog).

Like the other simulators it shares nothing with BrokerFlow: it knows SMTP and MIME, not mailer/.
"""
