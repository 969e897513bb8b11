//! ISO 20022 bank files for payouts: pain.001.001.09 customer credit transfer
//! initiations out, pain.002 customer payment status reports in. Pure: documents are
//! built from and read into plain values, with no I/O, so every rule is testable
//! without a bank.
//!
//! No schema is loaded at run time. The tests check what is written here, and the
//! status report fixtures, against the official XSDs with `scripts/xsd-validate`.

#![warn(missing_docs)]

mod amount;
pub mod iban;
pub mod outcome;
pub mod pain001;
pub mod pain002;

pub use outcome::{outcome, Outcome};
pub use pain001::{pain001_xml, CreditTransfer, Initiation, Party, WriteError};
pub use pain002::{
    parse_pain002, ParseError, PaymentInformationStatus, PaymentStatus, StatusReport,
};
