"""The object-store probe signs its request itself (AWS Signature V4) instead of loading botocore."""

from __future__ import annotations

from datetime import datetime

import pytest

from k2tui.stack.s3_signature import signed_headers

pytestmark = pytest.mark.unit

EXAMPLE_KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def test_the_signature_of_aws_s3_documented_example_list_objects() -> None:
    headers = signed_headers(
        "GET",
        "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
        *EXAMPLE_KEYS,
        "us-east-1",
        now=datetime(2013, 5, 24),
    )
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


def test_a_head_of_a_bucket_on_a_local_port_signs_as_botocore_does() -> None:
    from unittest import mock

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = "http://127.0.0.1:19000/warehouse"
    when = datetime(2026, 11, 22, 13, 5, 9)
    request = AWSRequest(method="HEAD", url=url, headers={})
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.S3SigV4Auth(Credentials(*EXAMPLE_KEYS), "s3", "us-east-1").add_auth(request)
    ours = signed_headers("HEAD", url, *EXAMPLE_KEYS, "us-east-1", now=when)
    assert ours["authorization"] == request.headers["Authorization"]
