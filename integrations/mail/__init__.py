"""Inbound mail providers: one adapter per provider behind ``MailAdapter`` (see ``base``).

``get_mail_adapter(kind)`` answers the adapter for "mailgun", "sendgrid", "postmark" or
"rawmime"; each turns a provider's webhook request into one ``InboundMail`` whose
``to_mime()`` the app parses. Like the rest of ``integrations/``, nothing here imports ``app/``.
"""

from integrations.mail.base import (
    DEFAULT_LIMITS,
    InboundMail,
    MailAdapter,
    MailAttachment,
    MailLimits,
    MailTooLargeError,
    get_mail_adapter,
    mail_kinds,
)

__all__ = [
    "DEFAULT_LIMITS",
    "InboundMail",
    "MailAdapter",
    "MailAttachment",
    "MailLimits",
    "MailTooLargeError",
    "get_mail_adapter",
    "mail_kinds",
]
