//! Webhook delivery: which addresses may be called, how requests are signed, and the
//! worker that delivers the outbox.

pub mod delivery;
pub mod endpoints;
pub mod signature;
pub mod target;
