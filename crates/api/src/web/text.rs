//! The pages' words: messages of `crates/i18n/locales/*/web.ftl`, by id, and the
//! forms of dates and instants, in the reader's language (settlement-i18n).

pub use settlement_i18n::{fmt_date, fmt_instant, Locale};

/// The message `id` in `locale` (a test keeps every id the pages use in both
/// languages).
pub fn t(locale: Locale, id: &str) -> String {
    settlement_i18n::tr(locale, id, &[])
}

/// The message `id` in `locale` with its `{ $name }` placeholders filled.
pub fn ta(locale: Locale, id: &str, args: &[(&str, String)]) -> String {
    let args: Vec<(&str, settlement_i18n::Arg<'_>)> = args
        .iter()
        .map(|(name, value)| (*name, settlement_i18n::Arg::from(value.as_str())))
        .collect();
    settlement_i18n::tr(locale, id, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids the pages name literally, and those they build from a stored name.
    fn ids_used() -> Vec<String> {
        let sources = [
            include_str!("layout.rs"),
            include_str!("merchant.rs"),
            include_str!("ops.rs"),
            include_str!("mod.rs"),
        ];
        let mut ids = Vec::new();
        for source in sources {
            for piece in source.split("\"web-").skip(1) {
                let id: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if piece[id.len()..].starts_with('"') {
                    ids.push(format!("web-{id}"));
                }
            }
        }
        let built: [(&str, &[&str]); 5] = [
            (
                "web-batch-status-",
                &[
                    "accepted",
                    "accepted-late",
                    "rejected-outside-grace",
                    "accepted-by-operator",
                    "declined",
                    "auto-closed",
                ],
            ),
            (
                "web-payout-status-",
                &["pending", "in-transit", "paid", "failed", "canceled"],
            ),
            ("web-review-state-", &["open", "resolved", "declined"]),
            ("web-ops-state-", &["open", "resolved", "declined", "all"]),
            (
                "web-ops-kind-",
                &[
                    "rejected-outside-grace",
                    "out-of-balance",
                    "duplicate-transactions",
                    "review-request",
                    "unmatched-transactions",
                ],
            ),
        ];
        for (prefix, names) in built {
            ids.extend(names.iter().map(|n| format!("{prefix}{n}")));
        }
        ids
    }

    #[test]
    fn every_message_the_pages_use_exists_in_every_language() {
        let ids = ids_used();
        assert!(ids.len() > 100, "{}", ids.len());
        for locale in Locale::ALL {
            for id in &ids {
                assert!(
                    settlement_i18n::has_message(locale, id),
                    "{id} is missing in {}",
                    locale.tag()
                );
            }
        }
    }

    #[test]
    fn placeholders_are_filled() {
        let text = ta(
            Locale::ZhCn,
            "web-unsettled-title",
            &[("terminal", "t1".into())],
        );
        assert_eq!(text, "终端 t1 的未结算交易");
    }
}
