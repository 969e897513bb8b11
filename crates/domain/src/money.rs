//! Money as integer minor units of an ISO 4217 currency.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Longest amount string accepted on the wire; anything longer cannot fit an `i64`
/// of minor units anyway and is refused before parsing.
pub const MAX_AMOUNT_TEXT_LEN: usize = 32;

/// An ISO 4217 currency the service settles in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    Usd,
    Eur,
    Gbp,
    Cny,
    Hkd,
    Sgd,
    Aud,
    Cad,
    Chf,
    Jpy,
    Krw,
    Kwd,
    Bhd,
}

impl Currency {
    /// Every supported currency.
    pub const ALL: [Currency; 13] = [
        Currency::Usd,
        Currency::Eur,
        Currency::Gbp,
        Currency::Cny,
        Currency::Hkd,
        Currency::Sgd,
        Currency::Aud,
        Currency::Cad,
        Currency::Chf,
        Currency::Jpy,
        Currency::Krw,
        Currency::Kwd,
        Currency::Bhd,
    ];

    /// The three-letter ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Cny => "CNY",
            Currency::Hkd => "HKD",
            Currency::Sgd => "SGD",
            Currency::Aud => "AUD",
            Currency::Cad => "CAD",
            Currency::Chf => "CHF",
            Currency::Jpy => "JPY",
            Currency::Krw => "KRW",
            Currency::Kwd => "KWD",
            Currency::Bhd => "BHD",
        }
    }

    /// Number of fraction digits of the minor unit (ISO 4217 exponent).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Jpy | Currency::Krw => 0,
            Currency::Kwd | Currency::Bhd => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A currency code the service does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported currency code")]
pub struct UnknownCurrency;

impl FromStr for Currency {
    type Err = UnknownCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or(UnknownCurrency)
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

/// Why an amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be a plain decimal string such as \"1234.50\"")]
    Malformed,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount has more fraction digits than the currency allows ({exponent})")]
    TooManyFractionDigits { exponent: u32 },
    #[error("amount is too large")]
    Overflow,
}

/// Parses a non-negative decimal string (`"1234.50"`) into minor units of `currency`.
///
/// Only digits with at most one decimal point are accepted: no sign, exponent,
/// separators or white space, so that one amount has exactly one spelling family.
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, AmountError> {
    if text.len() > MAX_AMOUNT_TEXT_LEN {
        return Err(AmountError::Overflow);
    }
    let unsigned = match text.strip_prefix('-') {
        Some(rest) => {
            return Err(if is_plain_decimal(rest) {
                AmountError::Negative
            } else {
                AmountError::Malformed
            })
        }
        None => text,
    };
    if !is_plain_decimal(unsigned) {
        return Err(AmountError::Malformed);
    }
    let value = Decimal::from_str_exact(unsigned).map_err(|_| AmountError::Overflow)?;
    let exponent = currency.exponent();
    if value.scale() > exponent {
        return Err(AmountError::TooManyFractionDigits { exponent });
    }
    let minor = value
        .checked_mul(Decimal::from(10_i64.pow(exponent)))
        .ok_or(AmountError::Overflow)?
        .trunc();
    i64::try_from(minor).map_err(|_| AmountError::Overflow)
}

fn is_plain_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

/// Formats minor units as a decimal string with exactly the currency's fraction digits.
pub fn format_amount(minor: i64, currency: Currency) -> String {
    Decimal::new(minor, currency.exponent()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_digit_currency_parses_cents() {
        assert_eq!(parse_amount("1234.50", Currency::Usd), Ok(123_450));
        assert_eq!(parse_amount("0.01", Currency::Eur), Ok(1));
        assert_eq!(parse_amount("7", Currency::Gbp), Ok(700));
    }

    #[test]
    fn zero_and_three_digit_currencies_use_their_exponent() {
        assert_eq!(parse_amount("1500", Currency::Jpy), Ok(1500));
        assert_eq!(
            parse_amount("1500.5", Currency::Krw),
            Err(AmountError::TooManyFractionDigits { exponent: 0 })
        );
        assert_eq!(parse_amount("1.234", Currency::Kwd), Ok(1234));
        assert_eq!(
            parse_amount("1.2345", Currency::Bhd),
            Err(AmountError::TooManyFractionDigits { exponent: 3 })
        );
    }

    #[test]
    fn too_many_fraction_digits_are_refused() {
        assert_eq!(
            parse_amount("1.005", Currency::Usd),
            Err(AmountError::TooManyFractionDigits { exponent: 2 })
        );
    }

    #[test]
    fn negative_and_malformed_amounts_are_refused() {
        assert_eq!(
            parse_amount("-1.00", Currency::Usd),
            Err(AmountError::Negative)
        );
        for bad in [
            "", ".5", "5.", "1e3", "+1", " 1", "1,000", "1_000", "0x10", "--1", "1.2.3",
        ] {
            assert_eq!(
                parse_amount(bad, Currency::Usd),
                Err(AmountError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn overflowing_amounts_are_refused() {
        assert_eq!(
            parse_amount("92233720368547758.08", Currency::Usd),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            parse_amount("92233720368547758.07", Currency::Usd),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_amount(&"9".repeat(40), Currency::Usd),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn formatting_pads_to_the_currency_exponent() {
        assert_eq!(format_amount(123_450, Currency::Usd), "1234.50");
        assert_eq!(format_amount(5, Currency::Usd), "0.05");
        assert_eq!(format_amount(-500, Currency::Usd), "-5.00");
        assert_eq!(format_amount(1500, Currency::Jpy), "1500");
        assert_eq!(format_amount(1, Currency::Bhd), "0.001");
    }

    #[test]
    fn currency_codes_round_trip() {
        for c in Currency::ALL {
            assert_eq!(c.code().parse::<Currency>(), Ok(c));
        }
        assert_eq!("usd".parse::<Currency>(), Err(UnknownCurrency));
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(minor in 0_i64..=i64::MAX, currency in any_currency()) {
            let text = format_amount(minor, currency);
            prop_assert_eq!(parse_amount(&text, currency), Ok(minor));
        }

        #[test]
        fn parse_then_format_keeps_the_value(whole in 0_u64..1_000_000_000, frac in 0_u32..1000, currency in any_currency()) {
            let exponent = currency.exponent();
            let text = if exponent == 0 {
                whole.to_string()
            } else {
                let frac = frac % 10_u32.pow(exponent);
                format!("{whole}.{frac:0width$}", width = usize::try_from(exponent).unwrap())
            };
            let minor = parse_amount(&text, currency).unwrap();
            prop_assert_eq!(format_amount(minor, currency), text);
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}", currency in any_currency()) {
            let _ = parse_amount(&text, currency);
        }
    }
}
