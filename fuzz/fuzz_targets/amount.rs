//! The amount parser on arbitrary text: it never panics, accepts exactly the plain
//! decimals whose value fits, and whatever it accepts formats back to the same value.
//!
//! Input: the first byte picks the currency (`A`..`M` are `Currency::ALL` in order,
//! so `A` is USD, `J` JPY, `L` KWD), the rest is the amount text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use settlement_domain::money::{
    format_amount, parse_amount, AmountError, Currency, MAX_AMOUNT_TEXT_LEN,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let currency = Currency::ALL[usize::from(selector) % Currency::ALL.len()];
    let text = String::from_utf8_lossy(rest);
    let parsed = parse_amount(&text, currency);
    let expected = expected_minor(&text, currency.exponent());

    match (parsed, expected) {
        (Ok(minor), Some(want)) => {
            assert_eq!(i128::from(minor), want, "{text:?} in {currency}");
            assert!(minor >= 0);
            let formatted = format_amount(minor, currency);
            assert_eq!(
                formatted,
                canonical(&text, currency.exponent()),
                "{text:?} in {currency}"
            );
            assert_eq!(
                parse_amount(&formatted, currency),
                Ok(minor),
                "{formatted:?}"
            );
        }
        (Err(err), None) => {
            if err == AmountError::Negative {
                assert!(text.starts_with('-'), "{text:?}");
            }
        }
        (got, want) => panic!("{text:?} in {currency}: parsed {got:?}, expected {want:?}"),
    }
});

/// The minor units `text` stands for under the documented rules (plain digits, at
/// most one point with digits on both sides, no more fraction digits than the
/// exponent, at most `MAX_AMOUNT_TEXT_LEN` bytes, fits an `i64`), worked out without
/// the parser's decimal type; `None` when the parser must refuse it.
fn expected_minor(text: &str, exponent: u32) -> Option<i128> {
    if text.len() > MAX_AMOUNT_TEXT_LEN {
        return None;
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return None;
    }
    let fraction = fraction.unwrap_or("");
    let exponent = usize::try_from(exponent).ok()?;
    if fraction.len() > exponent {
        return None;
    }
    // Every digit of the whole part, then the fraction padded to the exponent: at most
    // 32 + 3 digits, which a u128 holds only while the leading ones are zeros, so
    // checked arithmetic stops at the first step past an i64.
    let digits = whole
        .bytes()
        .chain(fraction.bytes())
        .chain(std::iter::repeat_n(b'0', exponent - fraction.len()));
    let mut value: i128 = 0;
    for d in digits {
        value = value.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        if value > i128::from(i64::MAX) {
            return None;
        }
    }
    Some(value)
}

/// How `format_amount` spells the value of an accepted `text`: no leading zeros in
/// the whole part (one `0` if it is zero) and exactly `exponent` fraction digits.
fn canonical(text: &str, exponent: u32) -> String {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    if exponent == 0 {
        return whole.to_owned();
    }
    let width = usize::try_from(exponent).unwrap_or(0);
    format!("{whole}.{fraction:0<width$}")
}
