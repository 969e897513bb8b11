//! The ISO 13616 IBAN check that decides between `<IBAN>` and `<Othr><Id>` for an
//! account.

/// Longest IBAN (ISO 13616; the XSD's IBAN2007Identifier is 2 letters, 2 digits and
/// up to 30 alphanumerics).
pub const MAX_IBAN_CHARS: usize = 34;

/// Whether `account` is an IBAN in electronic form (no spaces, upper case) whose
/// check digits pass the ISO 13616 mod-97 test.
///
/// Only the structure common to all countries is checked (country letters, check
/// digits 02 to 98, alphanumeric BBAN), not each country's length, so a string that
/// merely looks like an IBAN passes only by the 1-in-97 chance of the check digits.
/// Lower-case letters are refused: the electronic form is upper case, and an account
/// in any other form is written as it is given, under `<Othr><Id>`.
pub fn is_valid_iban(account: &str) -> bool {
    let bytes = account.as_bytes();
    let (Some(country), Some(check), Some(bban)) =
        (bytes.get(..2), bytes.get(2..4), bytes.get(4..))
    else {
        return false;
    };
    if bban.is_empty() || bytes.len() > MAX_IBAN_CHARS {
        return false;
    }
    if !country.iter().all(u8::is_ascii_uppercase)
        || !check.iter().all(u8::is_ascii_digit)
        || !bban
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        return false;
    }
    if matches!(check, b"00" | b"01" | b"99") {
        return false;
    }
    // The country and check digits move to the end; letters count as 10 to 35; the
    // whole number taken mod 97 must be 1. Folding digit by digit keeps it in a u32.
    let remainder = bban
        .iter()
        .chain(country)
        .chain(check)
        .fold(0u32, |rem, &b| {
            if b.is_ascii_digit() {
                (rem * 10 + u32::from(b - b'0')) % 97
            } else {
                (rem * 100 + u32::from(b - b'A') + 10) % 97
            }
        });
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_example_ibans_pass() {
        for iban in [
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "MT84MALT011000012345MTLCAST001S",
            "NO9386011117947",
        ] {
            assert!(is_valid_iban(iban), "{iban}");
        }
    }

    #[test]
    fn a_changed_digit_fails_the_check() {
        assert!(!is_valid_iban("DE89370400440532013001"));
        assert!(!is_valid_iban("GB82WEST12345698765431"));
        assert!(!is_valid_iban("DE88370400440532013000"));
    }

    #[test]
    fn other_account_forms_are_not_ibans() {
        // A 19-digit UnionPay debit card number.
        assert!(!is_valid_iban("6222020200112233446"));
        assert!(!is_valid_iban("DE89 3704 0044 0532 0130 00"));
        assert!(!is_valid_iban("de89370400440532013000"));
        assert!(!is_valid_iban("DE89"));
        assert!(!is_valid_iban(""));
        assert!(!is_valid_iban("DE8937040044053201300012345678901234"));
        assert!(!is_valid_iban("ÄE89370400440532013000"));
    }
}
