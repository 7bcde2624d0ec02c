//! Contract tests for the container images and the compose stack; the tests live in `tests/`.
