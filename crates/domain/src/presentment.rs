//! Duplicate presentment: a terminal's transaction (its RRN) is paid once.
//!
//! A sale or refund line presents its RRN for its terminal. While a batch that is
//! booked or held for operations presents an RRN, no other close of that terminal may
//! present it again. Voids cancel a sale of their own batch and are not paid, so they
//! present nothing (terminals often send the sale's RRN with its void).

use crate::batch::{LineType, TransactionLine};

/// How long a presented RRN blocks a repeat: 13 months, how long card schemes keep a
/// presentment open to dispute. After it, a terminal whose RRN counter wrapped may use
/// the number again.
pub const PRESENTMENT_WINDOW_DAYS: i64 = 395;

/// True when the line presents its RRN (sales and refunds do, voids do not).
pub fn presents(line: &TransactionLine) -> bool {
    line.line_type != LineType::Void
}

/// The RRNs a close presents, in line order.
pub fn presented_rrns(lines: &[TransactionLine]) -> impl Iterator<Item = &str> {
    lines.iter().filter(|l| presents(l)).map(|l| l.rrn.as_str())
}

/// The first line that presents an RRN an earlier line of the same close already
/// presents: `(index of the repeat, index of the first)`.
pub fn repeated_rrn_within(lines: &[TransactionLine]) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| presents(l)) {
        if let Some(first) = seen.insert(line.rrn.as_str(), i) {
            return Some((i, first));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn line(stan: &str, rrn: &str, line_type: LineType) -> TransactionLine {
        TransactionLine {
            stan: stan.into(),
            rrn: rrn.into(),
            line_type,
            amount_minor: 100,
            original_stan: (line_type == LineType::Void).then(|| "000001".into()),
            captured_at: Utc::now(),
            card_brand: None,
            masked_pan: None,
            auth_code: None,
        }
    }

    #[test]
    fn a_void_with_its_sales_rrn_presents_nothing() {
        let lines = [
            line("000001", "000000000001", LineType::Sale),
            line("000002", "000000000001", LineType::Void),
        ];
        assert_eq!(repeated_rrn_within(&lines), None);
        assert_eq!(presented_rrns(&lines).collect::<Vec<_>>(), ["000000000001"]);
    }

    #[test]
    fn a_refund_repeating_a_sales_rrn_is_found() {
        let lines = [
            line("000001", "000000000001", LineType::Sale),
            line("000002", "000000000002", LineType::Sale),
            line("000003", "000000000001", LineType::Refund),
        ];
        assert_eq!(repeated_rrn_within(&lines), Some((2, 0)));
    }
}
