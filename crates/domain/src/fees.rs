//! The acquirer's fee on a batch: MDR on non-voided sales plus a fixed fee per
//! non-voided sale. Refunds return no fee.
//!
//! Rounding: the MDR part is rounded half-to-even on the minor unit once per batch
//! (banker's rounding, so rounding errors do not drift one way over many batches);
//! the fixed part is exact. A cycle's fee is the sum of its batches' fees.

use std::collections::HashSet;

use crate::batch::{LineType, TransactionLine};
use crate::merchant::Pricing;

/// Basis points in a whole.
const BASIS_POINTS: i128 = 10_000;

/// Sales of a batch that no void cancels: their count and summed amount.
pub fn non_voided_sales(lines: &[TransactionLine]) -> (i64, i64) {
    let voided: HashSet<&str> = lines
        .iter()
        .filter(|l| l.line_type == LineType::Void)
        .filter_map(|l| l.original_stan.as_deref())
        .collect();
    lines
        .iter()
        .filter(|l| l.line_type == LineType::Sale && !voided.contains(l.stan.as_str()))
        .fold((0, 0), |(count, amount), l| {
            (count + 1, amount.saturating_add(l.amount_minor))
        })
}

/// `value * numerator / denominator`, rounded half to even. `denominator` > 0.
pub fn mul_div_half_even(value: i128, numerator: i128, denominator: i128) -> i128 {
    assert!(denominator > 0, "denominator must be positive");
    let product = value * numerator;
    let quotient = product.div_euclid(denominator);
    let remainder = product.rem_euclid(denominator);
    match (2 * remainder).cmp(&denominator) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal if quotient % 2 == 0 => quotient,
        std::cmp::Ordering::Equal => quotient + 1,
    }
}

/// The fee of a batch with `sale_count` non-voided sales summing to `sale_amount_minor`.
/// `None` when the fee does not fit in minor units.
pub fn batch_fee(sale_count: i64, sale_amount_minor: i64, pricing: Pricing) -> Option<i64> {
    let mdr = mul_div_half_even(
        i128::from(sale_amount_minor),
        i128::from(pricing.mdr_basis_points),
        BASIS_POINTS,
    );
    let fixed = i128::from(sale_count) * i128::from(pricing.fixed_fee_minor);
    i64::try_from(mdr + fixed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    fn pricing(bps: u32, fixed: i64) -> Pricing {
        Pricing {
            mdr_basis_points: bps,
            fixed_fee_minor: fixed,
        }
    }

    #[test]
    fn mdr_rounds_half_to_even_on_the_minor_unit() {
        // 1.50% of 1.00 is exactly 1.5 cents: rounds to the even 2.
        assert_eq!(batch_fee(0, 100, pricing(150, 0)), Some(2));
        // 1.50% of 3.00 is 4.5 cents: rounds to the even 4.
        assert_eq!(batch_fee(0, 300, pricing(150, 0)), Some(4));
        // 1.50% of 0.70 is 1.05 cents: rounds down to 1.
        assert_eq!(batch_fee(0, 70, pricing(150, 0)), Some(1));
        // 1.50% of 0.90 is 1.35 cents: down to 1; of 1.30, 1.95 cents: up to 2.
        assert_eq!(batch_fee(0, 90, pricing(150, 0)), Some(1));
        assert_eq!(batch_fee(0, 130, pricing(150, 0)), Some(2));
    }

    #[test]
    fn the_fixed_fee_is_per_non_voided_sale() {
        assert_eq!(batch_fee(3, 10_000, pricing(100, 10)), Some(100 + 30));
        assert_eq!(batch_fee(3, 10_000, pricing(0, 0)), Some(0));
    }

    #[test]
    fn voided_sales_pay_no_fee_and_refunds_return_none() {
        let at = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap();
        let line = |stan: &str, line_type, amount_minor, original: Option<&str>| TransactionLine {
            stan: stan.into(),
            rrn: "000000000000".into(),
            line_type,
            amount_minor,
            original_stan: original.map(Into::into),
            captured_at: at,
            card_brand: None,
            masked_pan: None,
            auth_code: None,
        };
        let lines = vec![
            line("000001", LineType::Sale, 2_300, None),
            line("000002", LineType::Refund, 500, None),
            line("000003", LineType::Sale, 700, None),
            line("000004", LineType::Void, 700, Some("000003")),
        ];
        assert_eq!(non_voided_sales(&lines), (1, 2_300));
    }

    proptest! {
        #[test]
        fn half_even_is_within_half_a_unit_of_the_exact_value(
            value in 0_i64..1_000_000_000_000, bps in 0_u32..=10_000,
        ) {
            let fee = i128::from(batch_fee(0, value, pricing(bps, 0)).unwrap());
            let exact_times_10000 = i128::from(value) * i128::from(bps);
            let diff = (fee * 10_000 - exact_times_10000).abs();
            prop_assert!(diff <= 5_000);
            if diff == 5_000 {
                prop_assert_eq!(fee % 2, 0, "ties go to the even unit");
            }
        }
    }
}
