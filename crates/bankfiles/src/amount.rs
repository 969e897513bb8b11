//! Decimal text of integer minor units, as the pain.001 amounts and control sums need
//! it. No floats: the text is cut from the integer's digits.

/// Largest ISO 4217 exponent (CLF and UYW have 4); the XSD itself allows 5 fraction
/// digits, so every currency that exists fits.
pub(crate) const MAX_MINOR_UNIT_DIGITS: u32 = 4;

/// Exclusive bound on an unscaled amount: the XSD's `totalDigits` of 18 for amounts
/// (ActiveOrHistoricCurrencyAndAmount) and control sums (DecimalNumber). Counting the
/// digits of the unscaled integer is stricter than the XSD by at most trailing zeros.
pub(crate) const AMOUNT_BOUND: u128 = 1_000_000_000_000_000_000;

/// `minor` units with exactly `digits` decimals: (1234, 2) is "12.34", (5, 3) is
/// "0.005", (7, 0) is "7".
pub(crate) fn decimal_text(minor: u128, digits: usize) -> String {
    let unscaled = minor.to_string();
    if digits == 0 {
        return unscaled;
    }
    // Pad so that at least one digit stands before the point.
    let padded = format!("{unscaled:0>width$}", width = digits + 1);
    let (units, fraction) = padded.split_at(padded.len() - digits);
    format!("{units}.{fraction}")
}

/// `minor` at `digits` decimals re-expressed at `to_digits` (>= `digits`) decimals,
/// or `None` on overflow.
pub(crate) fn rescale(minor: u128, digits: u32, to_digits: u32) -> Option<u128> {
    let factor = 10u128.checked_pow(to_digits.checked_sub(digits)?)?;
    minor.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_decimal_currencies_have_no_point() {
        assert_eq!(decimal_text(1, 0), "1");
        assert_eq!(decimal_text(1_000_000, 0), "1000000");
    }

    #[test]
    fn two_decimal_currencies_keep_both_digits() {
        assert_eq!(decimal_text(1234, 2), "12.34");
        assert_eq!(decimal_text(5, 2), "0.05");
        assert_eq!(decimal_text(100, 2), "1.00");
        assert_eq!(decimal_text(0, 2), "0.00");
    }

    #[test]
    fn three_decimal_currencies_keep_all_three_digits() {
        assert_eq!(decimal_text(1, 3), "0.001");
        assert_eq!(decimal_text(12_345, 3), "12.345");
        assert_eq!(decimal_text(10_000, 3), "10.000");
    }

    #[test]
    fn the_largest_amount_keeps_every_digit() {
        assert_eq!(decimal_text(AMOUNT_BOUND - 1, 4), "99999999999999.9999");
    }

    #[test]
    fn rescaling_multiplies_by_powers_of_ten_and_refuses_to_shrink() {
        assert_eq!(rescale(7, 0, 3), Some(7_000));
        assert_eq!(rescale(7, 2, 2), Some(7));
        assert_eq!(rescale(7, 3, 2), None);
        assert_eq!(rescale(u128::MAX, 0, 1), None);
    }
}
