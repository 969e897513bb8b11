//! Instants, dates, durations and amounts as they are written in a sentence of each
//! locale. Machine-readable fields keep RFC 3339 and plain decimal strings.

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use settlement_domain::money::{format_amount, Currency};

use crate::{tr, Locale};

/// An instant in the merchant's time zone with its UTC offset:
/// `Sat 5 Dec 2026, 22:00 (UTC-05:00)`, `2026年12月5日（周六）22:00（UTC-05:00）`.
pub fn fmt_instant(locale: Locale, at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    let offset = local.format("%:z");
    let time = local.format("%H:%M");
    format!(
        "{}{}{time}{}UTC{offset}{}",
        fmt_date(locale, local.date_naive()),
        match locale {
            Locale::En => ", ",
            Locale::ZhCn => "",
        },
        match locale {
            Locale::En => " (",
            Locale::ZhCn => "（",
        },
        match locale {
            Locale::En => ")",
            Locale::ZhCn => "）",
        },
    )
}

/// A calendar date with its weekday: `Sat 5 Dec 2026`, `2026年12月5日（周六）`.
pub fn fmt_date(locale: Locale, date: NaiveDate) -> String {
    match locale {
        Locale::En => date.format("%a %-d %b %Y").to_string(),
        Locale::ZhCn => format!(
            "{}年{}月{}日（{}）",
            date.year(),
            date.month(),
            date.day(),
            match date.weekday() {
                Weekday::Mon => "周一",
                Weekday::Tue => "周二",
                Weekday::Wed => "周三",
                Weekday::Thu => "周四",
                Weekday::Fri => "周五",
                Weekday::Sat => "周六",
                Weekday::Sun => "周日",
            }
        ),
    }
}

/// A duration in hours and minutes, seconds dropped: `16 hours 40 minutes`,
/// `16小时40分钟`; under a minute says so.
pub fn fmt_duration(locale: Locale, seconds: i64) -> String {
    let seconds = seconds.max(0);
    let hours = seconds / 3600;
    let minutes = (seconds % 3600) / 60;
    match (hours, minutes) {
        (0, 0) => tr(locale, "duration-under-a-minute", &[]),
        (0, m) => tr(locale, "duration-minutes", &[("minutes", m.into())]),
        (h, 0) => tr(locale, "duration-hours", &[("hours", h.into())]),
        (h, m) => tr(
            locale,
            "duration-hours-minutes",
            &[("hours", h.into()), ("minutes", m.into())],
        ),
    }
}

/// An amount with its currency and thousands separators: `USD 1,234.50`,
/// `1,234.50 美元`.
pub fn fmt_money(locale: Locale, minor: i64, currency: Currency) -> String {
    let plain = format_amount(minor, currency);
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if let Some(f) = fraction {
        grouped.push('.');
        grouped.push_str(f);
    }
    match locale {
        Locale::En => format!("{sign}{} {grouped}", currency.code()),
        Locale::ZhCn => format!("{sign}{grouped} {}", currency_name_zh(currency)),
    }
}

fn currency_name_zh(currency: Currency) -> &'static str {
    match currency {
        Currency::Usd => "美元",
        Currency::Eur => "欧元",
        Currency::Gbp => "英镑",
        Currency::Cny => "人民币",
        Currency::Hkd => "港元",
        Currency::Sgd => "新加坡元",
        Currency::Aud => "澳元",
        Currency::Cad => "加元",
        Currency::Chf => "瑞士法郎",
        Currency::Jpy => "日元",
        Currency::Krw => "韩元",
        Currency::Kwd => "科威特第纳尔",
        Currency::Bhd => "巴林第纳尔",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_local_with_their_offset() {
        let at: DateTime<Utc> = "2026-12-06T03:00:00Z".parse().unwrap();
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            fmt_instant(Locale::En, at, ny),
            "Sat 5 Dec 2026, 22:00 (UTC-05:00)"
        );
        assert_eq!(
            fmt_instant(Locale::ZhCn, at, chrono_tz::Asia::Shanghai),
            "2026年12月6日（周日）11:00（UTC+08:00）"
        );
        // Summer time shows its own offset.
        let july: DateTime<Utc> = "2026-07-01T16:30:00Z".parse().unwrap();
        assert_eq!(
            fmt_instant(Locale::En, july, ny),
            "Wed 1 Jul 2026, 12:30 (UTC-04:00)"
        );
    }

    #[test]
    fn durations_are_hours_and_minutes() {
        assert_eq!(fmt_duration(Locale::En, 60_050), "16 hours 40 minutes");
        assert_eq!(fmt_duration(Locale::En, 3_600), "1 hour");
        assert_eq!(fmt_duration(Locale::En, 61), "1 minute");
        assert_eq!(fmt_duration(Locale::En, 59), "under a minute");
        assert_eq!(fmt_duration(Locale::ZhCn, 60_050), "16小时40分钟");
        assert_eq!(fmt_duration(Locale::ZhCn, 7_200), "2小时");
        assert_eq!(fmt_duration(Locale::ZhCn, 10), "不到1分钟");
    }

    #[test]
    fn amounts_are_grouped_with_their_currency() {
        assert_eq!(
            fmt_money(Locale::En, 123_456_789, Currency::Usd),
            "USD 1,234,567.89"
        );
        assert_eq!(fmt_money(Locale::En, 5, Currency::Usd), "USD 0.05");
        assert_eq!(fmt_money(Locale::En, -250, Currency::Eur), "-EUR 2.50");
        assert_eq!(fmt_money(Locale::En, 1_500, Currency::Jpy), "JPY 1,500");
        assert_eq!(
            fmt_money(Locale::ZhCn, 100_000, Currency::Cny),
            "1,000.00 人民币"
        );
        assert_eq!(
            fmt_money(Locale::ZhCn, 123_456, Currency::Usd),
            "1,234.56 美元"
        );
    }
}
