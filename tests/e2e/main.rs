//! End-to-end tests: the real `trackiq` binary, the embedded Kafka-API broker, real HTTP
//! receivers, a real S3 server on loopback, and real files. One test binary (see the
//! workspace guide); each module is one path through the pipeline.

mod support;
mod alert_endpoints;

mod alerting;
mod bad_input;
mod bad_records;
mod bisect;
mod ci_recipe;
mod browser;
mod build_sharing;
mod compaction;
mod confirm;
mod cluster;
mod cluster_auth;
mod crash_loop;
mod crash_restart;
mod dashboard;
mod dashboard_interactive;
mod dashboard_launch;
mod dead_letters;
mod deploy;
mod fleet_report;
mod http_load;
mod ingest_api;
mod late_arrival;
mod importers;
mod llm;
mod nan_history;
mod one_verdict;
mod outages;
mod pipeline;
mod printed_hints;
mod profiles;
mod quick_start;
mod regression;
mod runtime;
mod s3;
mod scale_out;
mod secret_leaks;
mod secured_kafka;
mod skips;
mod supply_chain;
mod sql_server;
mod telemetry_in;
mod smtp_server;
mod transfer;
mod verdict_restart;
mod webdriver;
mod webhook_delivery;
