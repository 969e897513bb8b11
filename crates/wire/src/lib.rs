//! What crosses the wire between the service and its callers, without the server:
//! request bodies and their validation into domain types, token claims, roles and
//! signing, the stable problem codes, and the card-number scan of JSON values. The
//! simulator, the benchmark and the fuzz targets use it to speak to the service.

pub mod audit;
pub mod auth;
pub mod batches;
pub mod close;
pub mod exceptions;
pub mod json;
pub mod merchants;
pub mod money;
pub mod problem;
pub mod scan;
pub mod statement;
pub mod webhooks;

pub use problem::ProblemCode;
