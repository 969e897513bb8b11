# 商户在 API 回答中读到的句子：批次为何是这个状态、款项何时到账、下一步做什么。
# 时间已按商户时区并带 UTC 偏移格式化，金额带币种，时长以小时和分钟表示。

## 时长

duration-under-a-minute = 不到1分钟
duration-minutes = { $minutes }分钟
duration-hours = { $hours }小时
duration-hours-minutes = { $hours }小时{ $minutes }分钟

## 批次状态的原因

batch-accepted = 已在截止时间（{ $cutoff }）前结批：{ $amount } 将在 { $cycle_date } 的结算周期中支付，预计于 { $arrival } 到达您的银行账户。
batch-accepted-late = 在截止时间（{ $cutoff }）之后 { $late_by } 结批，但在宽限截止时间（{ $grace_deadline }）之前，因此按迟到批次接受：{ $amount } 推迟一个周期，在 { $cycle_date }（而不是 { $business_date }）的结算周期中支付，预计于 { $arrival } 到达您的银行账户。请在截止时间前为终端结批，可提前一个周期收款。
batch-accepted-by-operator = 在宽限截止时间（{ $grace_deadline }）之后结批，已由运营人员接受（“{ $reason }”）：{ $amount } 将在 { $cycle_date } 的结算周期中支付，预计于 { $arrival } 到达您的银行账户。
batch-declined = 在宽限截止时间（{ $grace_deadline }）之后结批，已被运营人员拒绝（“{ $reason }”），因此不予支付。下一步：如果这些交易仍应结算，请在新批次中重新结批；如有异议，请联系您的收单机构。
batch-held = 于 { $received } 结批，晚于宽限截止时间（{ $grace_deadline }），因此已交由运营人员处理：除非他们接受，否则 { $amount } 不予支付。下一步：申请复核此批次（在商户页面上，或通过 POST /v1/merchants/{ $merchant }/batches/{ $batch }/review-requests）。
batch-auto-closed = 终端 { $terminal } 未对 { $business_date } 结批，因此主机代终端用其授权的 { $count } 笔交易结批，视同在截止时间（{ $cutoff }）前结批。{ $amount } 将在 { $cycle_date } 的结算周期中支付，预计于 { $arrival } 到达您的银行账户。如果终端之后再结批这些交易，系统会识别出来，不会重复支付。
batch-already-settled = 其中 { $count } 笔交易已由主机自动结算（批次 { $batches }）：不会重复支付，批次合计也不包含它们。
batch-unmatched = 其中 { $count } 笔交易与主机的授权不符，运营人员将进行核查。

## 终端的未结算交易

unsettled-what = 主机已授权的 { $count } 笔交易（{ $amount }）尚未进入已结批的批次
unsettled-auto-close = { $what }。下一步：请在 { $cutoff } 前为终端结批，款项预计于 { $arrival } 到达您的银行账户。如未结批，主机将于 { $closes_at } 代终端结批，款项按时支付；此后终端再结批只会重复这些交易，系统会识别出来，不会重复支付。
unsettled-on-time = { $what }。下一步：请在 { $cutoff } 前为终端结批，以便按时收款：款项预计于 { $arrival } 到达您的银行账户。之后结批将推迟一个周期支付；超过宽限截止时间（{ $grace_deadline }）后，批次将交由运营人员处理。
unsettled-late = { $what }，且截止时间（{ $cutoff }）已过。下一步：请在宽限截止时间（{ $grace_deadline }）前为终端结批，款项将推迟一个周期支付，预计于 { $arrival } 到达您的银行账户。超过该时间后，批次将交由运营人员处理。
unsettled-past-grace = { $what }，且宽限截止时间（{ $grace_deadline }）已过。下一步：仍请为终端结批并申请复核：批次将由运营人员处理，待其接受后支付。

## 提醒

reminder-after-cutoff = 终端 { $terminal } 自 { $business_date } 的截止时间以来尚未结批。下一步：请在 { $grace_deadline } 前结批，以便收款（推迟一个周期）。
reminder-before-grace-deadline = 终端 { $terminal } 仍未对 { $business_date } 结批。下一步：请在 { $grace_deadline } 前结批；超过该时间后，批次将交由运营人员处理。
reminder-batch-number-gap = 终端 { $terminal } 跳过了批次号 { $numbers }（共 { $count } 个）。下一步：请检查终端上是否有批次丢失，并为仍未结批的批次结批。

## 付款

payout-pending = { $amount } 已安排付往您的银行账户，预计于 { $arrival } 到账。
payout-in-transit = { $amount } 已发送至您的银行，预计于 { $arrival } 到账。
payout-paid = { $amount } 已付入您的银行账户（{ $arrival }）。
payout-canceled = { $amount } 在发送前已取消；款项仍为应付给您的金额，将随之后的付款一起支付。
payout-failed = { $amount } 未能支付：{ $why }。款项安全，仍为应付给您的金额。下一步：{ $next }
payout-failed-account = 您的银行表示该账户无法入账（{ $code }）
payout-failed-other = 您的银行退回了该笔款项（{ $code }）
payout-next-account = 请向您的收单机构提供可用的结算银行账户；更换后付款将恢复。
payout-next-other = 无需操作，除非收单机构另有要求；款项将随之后的付款再次支付。
payouts-held-account = 自 { $since } 起您的付款已暂停：您的银行退回了付款 { $payout }（{ $code }），登记的账户无法入账。您的款项安全，仍为应付金额。下一步：请向您的收单机构提供可用的结算银行账户；更换后付款将恢复。
payouts-held-no-account = 尚未登记结算银行账户，因此付款处于等待状态。您的款项安全，仍为应付金额。下一步：请向您的收单机构提供银行账户；付款将随下一次导出发出。
