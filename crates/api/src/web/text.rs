//! The pages' words in each language, by message id, with `{ $name }` placeholders,
//! and the forms of dates and instants.

use chrono::{DateTime, NaiveDate, Utc};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En,
    ZhCn,
}

impl Locale {
    /// Every language, in the switch's order.
    pub const ALL: &'static [Locale] = &[Locale::En, Locale::ZhCn];

    /// The BCP 47 tag (`<html lang>`, `Content-Language`, the `lang` cookie).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::ZhCn => "简体中文",
        }
    }

    /// A tag as the cookie or a header names it (any case; `zh` and `zh-Hans` are
    /// Simplified Chinese).
    pub fn parse(tag: &str) -> Option<Locale> {
        let tag = tag.trim().to_ascii_lowercase();
        match tag.as_str() {
            "en" => Some(Locale::En),
            "zh-cn" | "zh" | "zh-hans" | "zh-hans-cn" | "zh-sg" => Some(Locale::ZhCn),
            t if t.starts_with("en-") => Some(Locale::En),
            _ => None,
        }
    }

    /// The first language of an Accept-Language header the pages are written in,
    /// by preference (`q`).
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut ranges: Vec<(f32, usize, Locale)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let locale = Locale::parse(pieces.next()?)?;
                let q = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .filter_map(|q| q.parse::<f32>().ok())
                    .next()
                    .unwrap_or(1.0);
                (q > 0.0 && q <= 1.0).then_some((q, i, locale))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.first().map(|r| r.2)
    }
}

/// The message `id` in `locale`; the id itself when it has none (a test keeps every
/// id the pages use in both languages).
pub fn t(locale: Locale, id: &str) -> String {
    ta(locale, id, &[])
}

/// The message `id` in `locale` with its `{ $name }` placeholders filled.
pub fn ta(locale: Locale, id: &str, args: &[(&str, String)]) -> String {
    let Some((_, en, zh)) = MESSAGES.iter().find(|(m, _, _)| *m == id) else {
        return id.to_owned();
    };
    let mut text = match locale {
        Locale::En => (*en).to_owned(),
        Locale::ZhCn => (*zh).to_owned(),
    };
    for (name, value) in args {
        text = text.replace(&format!("{{ ${name} }}"), value);
    }
    text
}

/// An instant in `zone`, as the reader writes it.
pub fn fmt_instant(locale: Locale, at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    let local = at.with_timezone(&zone);
    match locale {
        Locale::En => local.format("%-d %b %Y, %H:%M %Z").to_string(),
        Locale::ZhCn => local.format("%Y年%-m月%-d日 %H:%M %Z").to_string(),
    }
}

/// A date, as the reader writes it.
pub fn fmt_date(locale: Locale, d: NaiveDate) -> String {
    match locale {
        Locale::En => d.format("%a %-d %b %Y").to_string(),
        Locale::ZhCn => d.format("%Y年%-m月%-d日").to_string(),
    }
}

/// Every message: id, English, Simplified Chinese.
pub const MESSAGES: &[(&str, &str, &str)] = &[
    ("web-brand", "Settlement", "结算"),
    ("web-nav", "Pages", "页面"),
    ("web-language", "Language", "语言"),
    ("web-signed-in-as", "Signed in as", "已登录："),
    ("web-sign-out", "Sign out", "退出"),
    ("web-nav-money", "Where is my money", "我的钱在哪里"),
    ("web-nav-batches", "Batches", "批次"),
    ("web-nav-payouts", "Payouts", "付款"),
    ("web-nav-statement", "Statement", "对账单"),
    ("web-nav-reviews", "Review requests", "复核申请"),
    ("web-nav-webhooks", "Webhook endpoints", "Webhook 端点"),
    ("web-nav-exceptions", "Exceptions", "异常"),
    ("web-nav-payout-holds", "Payouts on hold", "暂停的付款"),
    ("web-sign-in", "Sign in", "登录"),
    ("web-sign-in-merchant-title", "Merchant sign-in", "商户登录"),
    ("web-sign-in-merchant-hint", "Paste the merchant token your acquirer gave you. It is exchanged for a session on this browser; the token itself is not kept.", "请粘贴收单机构提供的商户令牌。令牌将换成本浏览器上的会话，令牌本身不会被保存。"),
    ("web-sign-in-ops-title", "Operations sign-in", "运营登录"),
    ("web-sign-in-ops-hint", "Paste your operations token. It is exchanged for a session on this browser; the token itself is not kept.", "请粘贴您的运营令牌。令牌将换成本浏览器上的会话，令牌本身不会被保存。"),
    ("web-sign-in-token", "Token", "令牌"),
    ("web-sign-in-session-note", "A session lasts at most 8 hours, and never longer than the token. Sign out when you are done.", "会话最长 8 小时，且不会超过令牌的有效期。用完后请退出。"),
    ("web-sign-in-bad-token", "That token is not valid (or has expired). Check it and try again.", "该令牌无效（或已过期）。请检查后重试。"),
    ("web-sign-in-wrong-role", "That token is valid, but not for these pages.", "该令牌有效，但不能用于这些页面。"),
    ("web-error-title", "Something went wrong", "出错了"),
    ("web-error-internal", "The service failed to process the request. It was logged; try again later.", "服务未能处理该请求。已记录此问题，请稍后重试。"),
    ("web-error-unavailable", "The service is busy or briefly unavailable. Try again in a moment.", "服务繁忙或暂时不可用。请稍后重试。"),
    ("web-error-not-found", "There is no such page, or it is not yours to see.", "页面不存在，或您无权查看。"),
    ("web-error-forbidden", "This form has expired or did not come from this page. Go back, reload the page and send it again.", "此表单已过期或并非来自本页面。请返回并刷新页面后重新提交。"),
    ("web-error-rate-limited", "Too many requests in a short time. Wait a minute and try again.", "短时间内请求过多。请等待一分钟后重试。"),
    ("web-error-back-merchant", "Merchant pages", "商户页面"),
    ("web-error-back-ops", "Operations pages", "运营页面"),
    ("web-money-title", "Where is my money", "我的钱在哪里"),
    ("web-money-as-of", "As of { $time } (time zone { $zone }).", "截至 { $time }（时区 { $zone }）。"),
    ("web-money-next-cutoff", "Next cutoff: { $time }.", "下一个截止时间：{ $time }。"),
    ("web-money-attention", "What needs attention", "需要处理的事项"),
    ("web-money-nothing-to-do", "Nothing needs your attention.", "目前没有需要您处理的事项。"),
    ("web-money-payouts-withheld", "Payouts are on hold", "付款已暂停"),
    ("web-money-attention-batch", "Terminal { $terminal }, batch { $number }", "终端 { $terminal }，批次 { $number }"),
    ("web-money-see-batch", "See the batch", "查看批次"),
    ("web-money-held-what-to-do", "If you think it should be paid, ask for a review on the batch's page.", "如果您认为该批次应当结算，请在批次页面申请复核。"),
    ("web-money-terminal-not-closed", "Terminal { $terminal } has not closed its batch since the last cutoff. It can still close until { $deadline }.", "终端 { $terminal } 自上次截止后尚未结批。截至 { $deadline } 前仍可结批。"),
    ("web-money-see-unsettled", "See its unsettled transactions", "查看其未结算交易"),
    ("web-money-failed-webhooks", "{ $count } webhook deliveries failed in the last 30 days.", "过去 30 天内有 { $count } 次 Webhook 投递失败。"),
    ("web-money-open-reviews", "Open review requests: { $count }", "待处理的复核申请：{ $count }"),
    ("web-money-pending", "Pending, by settlement cycle", "待结算（按结算周期）"),
    ("web-money-no-pending", "No money is waiting for a settlement cycle.", "没有等待结算周期的款项。"),
    ("web-money-pending-total", "Pending in total:", "待结算合计："),
    ("web-money-payable", "Payable", "应付款"),
    ("web-money-payable-hint", "Settled and owed to you, waiting for its payout.", "已结算、应付给您、等待付款的金额。"),
    ("web-money-payouts", "Payouts", "付款"),
    ("web-money-next-payouts", "Coming payouts", "即将到账的付款"),
    ("web-money-last-payouts", "Recent payouts", "最近的付款"),
    ("web-money-terminals", "Terminals", "终端"),
    ("web-col-cycle-date", "Cycle", "结算周期"),
    ("web-col-settles-at", "Settles at", "结算时间"),
    ("web-col-batches", "Batches", "批次数"),
    ("web-col-net", "Net", "净额"),
    ("web-col-fee", "Fee", "手续费"),
    ("web-col-payable", "Payable", "应付"),
    ("web-col-arrives", "Arrives", "到账日期"),
    ("web-col-amount", "Amount", "金额"),
    ("web-col-status", "Status", "状态"),
    ("web-col-payout", "Payout", "付款编号"),
    ("web-col-terminal", "Terminal", "终端"),
    ("web-col-last-batch", "Last batch", "最近批次"),
    ("web-col-last-closed", "Last closed", "最近结批时间"),
    ("web-col-closed-since-cutoff", "Closed since cutoff", "截止后已结批"),
    ("web-col-unsettled", "Unsettled", "未结算"),
    ("web-col-business-date", "Business date", "营业日"),
    ("web-col-batch-number", "Batch number", "批次号"),
    ("web-col-batch", "Batch", "批次"),
    ("web-col-type", "Type", "类型"),
    ("web-col-card", "Card", "卡"),
    ("web-col-captured", "Captured", "交易时间"),
    ("web-col-authorized", "Authorized", "授权时间"),
    ("web-col-auth-code", "Auth code", "授权码"),
    ("web-yes", "Yes", "是"),
    ("web-no", "No", "否"),
    ("web-none", "None.", "无。"),
    ("web-next-page", "Next page", "下一页"),
    ("web-filter-any", "Any", "全部"),
    ("web-filter-apply", "Show", "显示"),
    ("web-filter-from", "From", "开始日期"),
    ("web-filter-to", "To", "结束日期"),
    ("web-batches-title", "Batches", "批次"),
    ("web-batch-title", "Batch { $number } of terminal { $terminal }", "终端 { $terminal } 的批次 { $number }"),
    ("web-batch-reason", "Why", "原因"),
    ("web-batch-received", "Received", "接收时间"),
    ("web-batch-grace-deadline", "Grace deadline", "宽限截止时间"),
    ("web-batch-lines", "Transactions", "交易"),
    ("web-batch-status-accepted", "Accepted", "已接受"),
    ("web-batch-status-accepted-late", "Accepted late", "逾期接受"),
    ("web-batch-status-rejected-outside-grace", "Held: closed after its grace deadline", "暂扣：超过宽限期后结批"),
    ("web-batch-status-accepted-by-operator", "Accepted by operations", "运营已接受"),
    ("web-batch-status-declined", "Declined", "已拒绝"),
    ("web-batch-status-auto-closed", "Closed by the host", "主机自动结批"),
    ("web-payout-status-pending", "Pending", "待付款"),
    ("web-payout-status-in-transit", "On its way", "付款中"),
    ("web-payout-status-paid", "Paid", "已到账"),
    ("web-payout-status-failed", "Failed", "失败"),
    ("web-payout-status-canceled", "Canceled", "已取消"),
    ("web-review-state-open", "Waiting for operations", "等待运营处理"),
    ("web-review-state-resolved", "Accepted", "已接受"),
    ("web-review-state-declined", "Declined", "已拒绝"),
    ("web-review-request", "Ask for a review", "申请复核"),
    ("web-review-request-hint", "This batch was closed after its grace deadline, so it is held and not paid. Tell operations why it should be paid; they will accept or decline it, and you will read their reason here.", "该批次在宽限期后才结批，因此被暂扣且不会结算。请告诉运营人员应当结算的理由；他们会接受或拒绝，并在此处给出理由。"),
    ("web-review-note", "Note", "说明"),
    ("web-review-send", "Send the request", "提交申请"),
    ("web-review-asked", "Asked", "申请时间"),
    ("web-review-decision", "Decision", "处理结果"),
    ("web-reviews-title", "Review requests", "复核申请"),
    ("web-reviews-hint", "Batches held after their grace deadline are paid only when operations accept them. Ask for a review from the batch's page.", "超过宽限期被暂扣的批次，只有在运营接受后才会结算。请在批次页面申请复核。"),
    ("web-reviews-held", "Held batches without a request", "尚未申请复核的暂扣批次"),
    ("web-reviews-asked", "Your requests", "您的申请"),
    ("web-unsettled-title", "Unsettled transactions of terminal { $terminal }", "终端 { $terminal } 的未结算交易"),
    ("web-unsettled-count", "{ $count } transactions authorized and not yet closed in a batch.", "{ $count } 笔交易已授权但尚未结批。"),
    ("web-payouts-title", "Payouts", "付款"),
    ("web-statement-title", "Statement", "对账单"),
    ("web-statement-hint", "Every transaction, batch, fee, cycle and payout in a date range (at most a year). Held and declined batches are listed but never counted as money.", "指定日期范围内（最长一年）的所有交易、批次、手续费、结算周期和付款。暂扣和已拒绝的批次会列出，但不计入金额。"),
    ("web-statement-format", "Format", "格式"),
    ("web-statement-download", "Download", "下载"),
    ("web-webhooks-title", "Webhook endpoints", "Webhook 端点"),
    ("web-webhooks-events", "Events", "事件"),
    ("web-webhooks-rotate", "New secret", "更换密钥"),
    ("web-webhooks-delete", "Delete", "删除"),
    ("web-webhooks-add", "Add an endpoint", "添加端点"),
    ("web-webhooks-url", "URL (https)", "URL（https）"),
    ("web-webhooks-secret-once", "The signing secret of { $url }, shown only this once: copy it now.", "{ $url } 的签名密钥，仅显示这一次：请立即复制。"),
    ("web-ops-queue-title", "Exceptions", "异常"),
    ("web-ops-queue-empty", "No exceptions match.", "没有符合条件的异常。"),
    ("web-ops-kind", "Kind", "类型"),
    ("web-ops-merchant", "Merchant", "商户"),
    ("web-ops-kind-rejected-outside-grace", "Held after the grace deadline", "超过宽限期被暂扣"),
    ("web-ops-kind-out-of-balance", "Out of balance", "金额不平"),
    ("web-ops-kind-duplicate-transactions", "Duplicate transactions", "重复交易"),
    ("web-ops-kind-review-request", "Review request", "复核申请"),
    ("web-ops-state-open", "Open", "待处理"),
    ("web-ops-state-resolved", "Resolved", "已解决"),
    ("web-ops-state-declined", "Declined", "已拒绝"),
    ("web-ops-state-all", "All", "全部"),
    ("web-ops-decided-by", "Decided by", "处理人"),
    ("web-ops-differences", "Differences", "差异"),
    ("web-ops-reason", "Reason (the merchant reads it)", "理由（商户可见）"),
    ("web-ops-accept", "Accept and book", "接受并入账"),
    ("web-ops-decline", "Decline", "拒绝"),
    ("web-ops-holds-title", "Payouts on hold", "暂停的付款"),
    ("web-ops-holds-hint", "A payout returned because the bank account cannot take money holds the merchant's payouts. Changing the merchant's bank account (PATCH /v1/ops/merchants/{merchant_id}) releases the hold.", "因银行账户无法入账而被退回的付款会暂停该商户的所有付款。修改商户的银行账户（PATCH /v1/ops/merchants/{merchant_id}）即可解除暂停。"),
    ("web-ops-failure-code", "Failure code", "失败代码"),
    ("web-ops-held-since", "On hold since", "暂停起始时间"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages_and_the_same_placeholders() {
        let placeholders = |s: &str| {
            let mut names: Vec<String> = s
                .split("{ $")
                .skip(1)
                .filter_map(|rest| rest.split_once(" }").map(|(n, _)| n.to_owned()))
                .collect();
            names.sort();
            names
        };
        let mut ids = std::collections::BTreeSet::new();
        for (id, en, zh) in MESSAGES {
            assert!(ids.insert(*id), "{id} twice");
            assert!(!en.is_empty() && !zh.is_empty(), "{id}");
            assert_eq!(placeholders(en), placeholders(zh), "{id}");
        }
    }

    #[test]
    fn every_message_the_pages_use_exists() {
        let sources = [
            include_str!("layout.rs"),
            include_str!("merchant.rs"),
            include_str!("ops.rs"),
            include_str!("mod.rs"),
        ];
        for source in sources {
            for piece in source.split("\"web-").skip(1) {
                let id: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if piece[id.len()..].starts_with('"') {
                    let id = format!("web-{id}");
                    assert!(MESSAGES.iter().any(|(m, _, _)| *m == id), "{id} is missing");
                }
            }
        }
        for status in [
            "accepted",
            "accepted-late",
            "rejected-outside-grace",
            "accepted-by-operator",
            "declined",
            "auto-closed",
        ] {
            assert_ne!(
                t(Locale::ZhCn, &format!("web-batch-status-{status}")),
                format!("web-batch-status-{status}")
            );
        }
    }

    #[test]
    fn accept_language_picks_the_most_preferred_language_written() {
        assert_eq!(
            Locale::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Locale::ZhCn)
        );
        assert_eq!(
            Locale::from_accept_language("fr, en;q=0.5, zh;q=0.7"),
            Some(Locale::ZhCn)
        );
        assert_eq!(Locale::from_accept_language("en-GB"), Some(Locale::En));
        assert_eq!(Locale::from_accept_language("fr, de"), None);
        assert_eq!(Locale::from_accept_language("zh;q=0"), None);
    }
}
