"""Sending the provider's mail through an SMTP server, with the standard library."""

import asyncio
import os
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password


# --8<-- [start:send]
def deliver(message: EmailMessage) -> None:
    with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ.get("SMTP_PORT", "587"))) as smtp:
        smtp.starttls(context=ssl.create_default_context())  # checks the server's certificate
        smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
        smtp.send_message(message)


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    message = EmailMessage()
    message["From"] = os.environ.get("MAIL_FROM", "Example <no-reply@example.com>")
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    await asyncio.to_thread(deliver, message)  # smtplib blocks: keep it off the event loop


# --8<-- [end:send]

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Password(send=send_email)],
)
app = Starlette(middleware=[Middleware(AuthMiddleware, config=config)])
