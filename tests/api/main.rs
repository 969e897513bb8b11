//! Black-box API tests: each test starts the real application on port 0 against a
//! fresh database on a real Postgres, and talks HTTP with real signed tokens.

mod helpers;
mod receiver;

mod auth;
mod authz_matrix;
mod auto_close;
mod bank_accounts;
mod batch_close;
mod browser;
mod card_numbers;
mod connections;
mod contract;
mod host;
mod languages;
mod merchant_reads;
mod operations;
mod presentment;
mod request_bodies;
mod settlement;
mod telemetry;
mod web;
mod webhooks;
