"""The one customer mail every mail adapter's ``sample`` carries, in its provider's shape.

Dana asks to return the boots from order #1001 and attaches a photo; she writes to the
returns address with a reply token, so a sample also exercises threading by token.
"""

from __future__ import annotations

import base64
from email import policy
from email.message import EmailMessage

FROM_NAME = "Dana Whitfield"
FROM_ADDRESS = "dana.whitfield@example.com"
FROM = f"{FROM_NAME} <{FROM_ADDRESS}>"
TO = "returns+c7f3a91b@reply.outfitters.example"
SUBJECT = "Return for order #1001"
DATE = "Tue, 25 Nov 2025 10:00:00 +0000"
MESSAGE_ID = "<CAF3xq9Y2s1=boots1001@mail.example.com>"
TEXT = ("Hi,\n\nI'd like to return the hiking boots from order #1001 - they are a size too small.\n"
        "A photo of the box is attached. Can you send me a return label?\n\nThanks,\nDana\n")
HTML = ("<div dir=\"ltr\"><p>Hi,</p><p>I'd like to return the hiking boots from order #1001 - they are a size "
        "too small.<br>A photo of the box is attached. Can you send me a return label?</p>"
        "<p>Thanks,<br>Dana</p></div>")
PHOTO_NAME = "boots.png"
PHOTO_TYPE = "image/png"
#: A 1×1 PNG: small, yet a real image for whoever stores it as evidence.
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

HEADERS: list[tuple[str, str]] = [
    ("Received", "from mail.example.com (mail.example.com [203.0.113.7]) by mx.outfitters.example; " + DATE),
    ("MIME-Version", "1.0"),
    ("From", FROM),
    ("Date", DATE),
    ("Message-ID", MESSAGE_ID),
    ("Subject", SUBJECT),
    ("To", TO),
    ("Content-Type", 'multipart/mixed; boundary="000000000000a1b2c3"'),
]


def raw_message() -> bytes:
    """The sample as the RFC 822 message the customer's client sent."""
    message = EmailMessage(policy=policy.SMTP)
    for name, value in HEADERS:
        if name.lower() not in ("mime-version", "content-type"):
            message[name] = value
    message.set_content(TEXT)
    message.add_alternative(HTML, subtype="html")
    message.add_attachment(PHOTO, maintype="image", subtype="png", filename=PHOTO_NAME)
    return message.as_bytes()
