//! The end-to-end suite lives in `tests/e2e/`. It runs the real `webhook-ingest`, `inbox` and
//! `gateway` binaries (built by `cargo test --workspace` or `make build`) against a private
//! nats-server and a fresh database, on SQLite by default and on PostgreSQL with
//! `SCIFER_TEST_DB=postgres`.
