//! HTTP handlers, one file per audience.

pub mod health;
pub mod merchants;
pub mod ops;
pub mod terminals;
