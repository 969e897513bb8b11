//! Reconciliation: the host's totals from the lines against the terminal's.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::batch::{FieldError, LineType, Totals, TransactionLine};

/// One control total on which the terminal and the host disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotalDifference {
    /// Name of the total (`sale_count`, `refund_amount`...).
    pub total: &'static str,
    /// The terminal's value (minor units for amounts).
    pub terminal: i64,
    /// The host's value computed from the lines (minor units for amounts).
    pub host: i64,
}

/// Computes the host's totals from the lines and checks how lines refer to each
/// other: STANs unique, every void names a sale of the batch with the same amount,
/// no sale voided twice, only voids name an original.
pub fn host_totals(lines: &[TransactionLine]) -> Result<Totals, FieldError> {
    let mut by_stan: HashMap<&str, &TransactionLine> = HashMap::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if by_stan.insert(line.stan.as_str(), line).is_some() {
            return Err(FieldError::new(
                format!("transactions[{i}].stan"),
                "is used by another line of the batch",
            ));
        }
    }
    let mut voided: HashSet<&str> = HashSet::new();
    let mut totals = Totals::default();
    let overflow = || FieldError::new("transactions", "amounts overflow");
    for (i, line) in lines.iter().enumerate() {
        let (count, amount) = match line.line_type {
            LineType::Sale => (&mut totals.sale_count, &mut totals.sale_amount_minor),
            LineType::Refund => (&mut totals.refund_count, &mut totals.refund_amount_minor),
            LineType::Void => (&mut totals.void_count, &mut totals.void_amount_minor),
        };
        *count += 1;
        *amount = amount.checked_add(line.amount_minor).ok_or_else(overflow)?;
        match (line.line_type, line.original_stan.as_deref()) {
            (LineType::Void, None) => {
                return Err(FieldError::new(
                    format!("transactions[{i}].original_stan"),
                    "a void must name the sale it cancels",
                ))
            }
            (LineType::Void, Some(original)) => {
                let field = format!("transactions[{i}].original_stan");
                let sale = by_stan
                    .get(original)
                    .filter(|s| s.line_type == LineType::Sale)
                    .ok_or_else(|| FieldError::new(&field, "names no sale of this batch"))?;
                if sale.amount_minor != line.amount_minor {
                    return Err(FieldError::new(
                        format!("transactions[{i}].amount"),
                        "a void must have the amount of the sale it cancels",
                    ));
                }
                if !voided.insert(original) {
                    return Err(FieldError::new(field, "that sale is already voided"));
                }
            }
            (_, Some(_)) => {
                return Err(FieldError::new(
                    format!("transactions[{i}].original_stan"),
                    "only a void names an original sale",
                ))
            }
            (_, None) => {}
        }
    }
    totals.net_amount_minor().ok_or_else(overflow)?;
    Ok(totals)
}

/// Every total on which `terminal` and `host` differ, in a fixed order.
pub fn differences(terminal: &Totals, host: &Totals) -> Vec<TotalDifference> {
    [
        ("sale_count", terminal.sale_count, host.sale_count),
        (
            "sale_amount",
            terminal.sale_amount_minor,
            host.sale_amount_minor,
        ),
        ("refund_count", terminal.refund_count, host.refund_count),
        (
            "refund_amount",
            terminal.refund_amount_minor,
            host.refund_amount_minor,
        ),
        ("void_count", terminal.void_count, host.void_count),
        (
            "void_amount",
            terminal.void_amount_minor,
            host.void_amount_minor,
        ),
    ]
    .into_iter()
    .filter(|(_, t, h)| t != h)
    .map(|(total, terminal, host)| TotalDifference {
        total,
        terminal,
        host,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    fn line(
        stan: &str,
        line_type: LineType,
        amount_minor: i64,
        original: Option<&str>,
    ) -> TransactionLine {
        TransactionLine {
            stan: stan.into(),
            rrn: format!("633012{stan}"),
            line_type,
            amount_minor,
            original_stan: original.map(Into::into),
            captured_at: DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap(),
            card_brand: None,
            masked_pan: None,
            auth_code: None,
        }
    }

    #[test]
    fn a_voided_sale_counts_in_sales_and_is_cancelled_by_the_void() {
        let lines = vec![
            line("000001", LineType::Sale, 1000, None),
            line("000002", LineType::Sale, 2000, None),
            line("000003", LineType::Refund, 500, None),
            line("000004", LineType::Void, 2000, Some("000002")),
        ];
        let t = host_totals(&lines).unwrap();
        assert_eq!((t.sale_count, t.sale_amount_minor), (2, 3000));
        assert_eq!((t.refund_count, t.refund_amount_minor), (1, 500));
        assert_eq!((t.void_count, t.void_amount_minor), (1, 2000));
        assert_eq!(t.net_amount_minor(), Some(500));
    }

    #[test]
    fn refund_heavy_batches_have_a_negative_net() {
        let lines = vec![
            line("000001", LineType::Sale, 100, None),
            line("000002", LineType::Refund, 900, None),
        ];
        assert_eq!(host_totals(&lines).unwrap().net_amount_minor(), Some(-800));
    }

    #[test]
    fn bad_references_between_lines_are_refused() {
        let dup = vec![
            line("000001", LineType::Sale, 1, None),
            line("000001", LineType::Sale, 1, None),
        ];
        assert_eq!(host_totals(&dup).unwrap_err().field, "transactions[1].stan");
        let orphan = vec![line("000002", LineType::Void, 1, Some("000001"))];
        assert!(host_totals(&orphan).is_err());
        let no_original = vec![
            line("000001", LineType::Sale, 1, None),
            line("000002", LineType::Void, 1, None),
        ];
        assert!(host_totals(&no_original).is_err());
        let wrong_amount = vec![
            line("000001", LineType::Sale, 5, None),
            line("000002", LineType::Void, 4, Some("000001")),
        ];
        assert_eq!(
            host_totals(&wrong_amount).unwrap_err().field,
            "transactions[1].amount"
        );
        let twice = vec![
            line("000001", LineType::Sale, 5, None),
            line("000002", LineType::Void, 5, Some("000001")),
            line("000003", LineType::Void, 5, Some("000001")),
        ];
        assert!(host_totals(&twice).is_err());
        let void_of_refund = vec![
            line("000001", LineType::Refund, 5, None),
            line("000002", LineType::Void, 5, Some("000001")),
        ];
        assert!(host_totals(&void_of_refund).is_err());
    }

    #[test]
    fn differences_list_each_disagreeing_total() {
        let host = Totals {
            sale_count: 2,
            sale_amount_minor: 3000,
            ..Totals::default()
        };
        let terminal = Totals {
            sale_count: 2,
            sale_amount_minor: 3100,
            refund_count: 1,
            ..Totals::default()
        };
        let d = differences(&terminal, &host);
        assert_eq!(
            d,
            vec![
                TotalDifference {
                    total: "sale_amount",
                    terminal: 3100,
                    host: 3000
                },
                TotalDifference {
                    total: "refund_count",
                    terminal: 1,
                    host: 0
                },
            ]
        );
        assert!(differences(&host, &host).is_empty());
    }

    proptest! {
        #[test]
        fn host_totals_agree_with_a_plain_sum(
            kinds in proptest::collection::vec((0_u8..3, 1_i64..1_000_000), 1..200)
        ) {
            // Build sales and refunds, then void every third sale.
            let mut lines = Vec::new();
            let mut stan = 0;
            for (kind, amount) in &kinds {
                stan += 1;
                let t = if *kind == 1 { LineType::Refund } else { LineType::Sale };
                lines.push(line(&format!("{stan:06}"), t, *amount, None));
            }
            let sales: Vec<(String, i64)> = lines.iter().filter(|l| l.line_type == LineType::Sale).map(|l| (l.stan.clone(), l.amount_minor)).collect();
            for (i, (original, amount)) in sales.iter().enumerate() {
                if i % 3 == 0 {
                    stan += 1;
                    lines.push(line(&format!("{stan:06}"), LineType::Void, *amount, Some(original)));
                }
            }
            let t = host_totals(&lines).unwrap();
            let sum = |k: LineType| lines.iter().filter(|l| l.line_type == k).map(|l| l.amount_minor).sum::<i64>();
            prop_assert_eq!(t.sale_amount_minor, sum(LineType::Sale));
            prop_assert_eq!(t.refund_amount_minor, sum(LineType::Refund));
            prop_assert_eq!(t.void_amount_minor, sum(LineType::Void));
            prop_assert_eq!(t.sale_count + t.refund_count + t.void_count, i64::try_from(lines.len()).unwrap());
            prop_assert!(differences(&t, &t).is_empty());
        }
    }
}
