"""Secrets are scrubbed from text, URLs and log records."""

import logging

from satx.io import secrets


def test_url_parameters_user_info_and_registered_values_are_redacted():
    url = (
        "https://user:pw-9876@h/t/{z}/{x}/{y}.png?style=sat&access_token=tok-123456&apikey=k-98765"
    )
    shown = secrets.redact_url(url)
    assert (
        shown
        == "https://REDACTED@h/t/{z}/{x}/{y}.png?style=sat&access_token=REDACTED&apikey=REDACTED"
    )
    # once seen in a URL, a value is scrubbed wherever it turns up later
    assert secrets.scrub("the token tok-123456 leaked") == "the token REDACTED leaked"
    name, value = secrets.parse_header("Authorization: Bearer hdr-abcdef-1")
    assert (name, value) == ("Authorization", "Bearer hdr-abcdef-1")
    assert secrets.scrub("sent hdr-abcdef-1") == "sent REDACTED"
    assert secrets.scrub("u?X-Amz-Signature=abc123def&x=1") == "u?X-Amz-Signature=REDACTED&x=1"
    assert secrets.scrub("no secrets here: z=18&x=5") == "no secrets here: z=18&x=5"


def test_log_records_are_scrubbed(caplog):
    secrets.register("log-s3cr3t-42")
    secrets.scrub_logs()
    secrets.scrub_logs()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("satx.test").info("fetching %s", "http://h/?key=log-s3cr3t-42")
    assert "log-s3cr3t-42" not in caplog.text and "REDACTED" in caplog.text
