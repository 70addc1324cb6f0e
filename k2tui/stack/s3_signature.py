"""AWS Signature Version 4 for a body-less S3 request, so that a status probe can ask the object store
something without a botocore client, whose service model costs a third of a second to load in every
process that shows a status (the cockpit, `k2tui status`)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"


def signed_headers(
    method: str, url: str, access_key: str, secret_key: str, region: str, now: datetime | None = None
) -> dict[str, str]:
    """The headers that sign `method url` (no body) for S3 in `region`."""
    parts = urlsplit(url)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    query = "&".join(
        f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}"
        for key, value in sorted(parse_qsl(parts.query, keep_blank_values=True))
    )
    headers = f"host:{parts.netloc}\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{stamp}\n"
    canonical = "\n".join(
        [method, quote(parts.path or "/", safe="/-_.~"), query, headers, SIGNED_HEADERS, EMPTY_SHA256]
    )
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    signature = hmac.new(key, to_sign.encode(), "sha256").hexdigest()
    return {
        "x-amz-date": stamp,
        "x-amz-content-sha256": EMPTY_SHA256,
        "authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
    }
