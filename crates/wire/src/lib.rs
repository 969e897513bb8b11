//! What crosses the wire between the service and its callers, without the server:
//! request bodies and their validation into domain types, the JSON views the API
//! answers with (and the events it sends), token claims, roles and signing, the
//! stable problem codes, and the card-number scan of JSON values. The simulator, the
//! benchmark and the fuzz targets use it to speak to the service.

pub mod audit;
pub mod auth;
pub mod bank_reports;
pub mod batches;
pub mod close;
pub mod exceptions;
pub mod holidays;
pub mod host;
pub mod json;
pub mod merchants;
pub mod money;
pub mod page;
pub mod problem;
pub mod reminders;
pub mod scan;
pub mod settlement;
pub mod statement;
pub mod status;
pub mod webhooks;

pub use page::Page;
pub use problem::ProblemCode;
