"""Schemathesis hooks of scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

Request bodies whose media type Schemathesis cannot generate from a JSON Schema:
`application/x-protobuf` (Prometheus remote write, snappy-compressed protobuf) gets
arbitrary bytes, so the route is still called with bodies it must refuse without a 5xx.
"""

from hypothesis import strategies as st

import schemathesis

schemathesis.openapi.media_type("application/x-protobuf", st.binary(max_size=4096))
