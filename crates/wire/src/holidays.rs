//! The holiday calendar as the API shows it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A holiday as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct HolidayView {
    pub date: NaiveDate,
    pub name: String,
}

/// The holiday list.
#[derive(Debug, Serialize, Deserialize)]
pub struct HolidayList {
    pub data: Vec<HolidayView>,
}
