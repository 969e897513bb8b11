//! The reliability battery: faults, concurrency and attacks against the real
//! service and a real Postgres. Each test prints a `FIGURES` line (seen with
//! `--nocapture`); `scripts/reliability` runs the battery at a larger scale.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "../api/receiver.rs"]
#[allow(dead_code)]
mod receiver;

mod conservation;
mod contention;
mod harness;
mod limits;
mod model;
mod pan_everywhere;
mod process_faults;
mod replicas;
