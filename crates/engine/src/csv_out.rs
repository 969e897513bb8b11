//! The CSV files the service writes (statements, payout instructions), through the
//! `csv` crate (RFC 4180 quoting), with a guard against formula injection: a field a
//! spreadsheet would take for a formula (one starting with `=`, `+`, `-`, `@`, a tab
//! or a carriage return, other than a plain number such as `-12.34`) is written with a
//! leading apostrophe, which spreadsheets show as text.

/// One CSV record, with its line ending (`\n`).
pub fn record<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(512)
        .from_writer(Vec::with_capacity(256));
    // Writing into memory cannot fail, and every field is UTF-8 text.
    for field in fields {
        let _ = writer.write_field(guarded(field.as_ref()).as_bytes());
    }
    let _ = writer.write_record(std::iter::empty::<&[u8]>());
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// The field as written: with a leading apostrophe when a spreadsheet would read it
/// as a formula.
fn guarded(field: &str) -> std::borrow::Cow<'_, str> {
    let risky = field
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    if risky && !is_plain_number(field) {
        format!("'{field}").into()
    } else {
        field.into()
    }
}

/// True for `-12.34`, `+5`, `-0.5`: a sign, digits, at most one decimal point.
fn is_plain_number(field: &str) -> bool {
    let digits = field.trim_start_matches(['-', '+']);
    digits.len() + 1 == field.len()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && digits.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        assert_eq!(record(["a", "b c", "1.00"]), "a,b c,1.00\n");
        assert_eq!(
            record(["with,comma", "with \"quote\"", "two\nlines"]),
            "\"with,comma\",\"with \"\"quote\"\"\",\"two\nlines\"\n"
        );
        assert_eq!(record(["", "x"]), ",x\n");
    }

    #[test]
    fn what_a_spreadsheet_would_run_is_written_as_text() {
        assert_eq!(
            record(["=SUM(A1:A9)", "+1+1", "-A1", "@cmd", "\tx"]),
            "'=SUM(A1:A9),'+1+1,'-A1,'@cmd,'\tx\n"
        );
        // Plain numbers keep their sign.
        assert_eq!(record(["-12.34", "+5", "-0.5", "7"]), "-12.34,+5,-0.5,7\n");
        // Not plain numbers.
        assert_eq!(
            record(["-", "-.5", "-1.2.3", "--1"]),
            "'-,'-.5,'-1.2.3,'--1\n"
        );
    }
}
