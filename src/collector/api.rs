//! The collector's HTTP API (ingest, health, metrics).
