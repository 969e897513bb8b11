# 问题详情：每个固定代码对应一个简短标题和一句说明。代码本身从不翻译。

problem-unauthorized-title = 未登录
problem-unauthorized-detail = 请求未携带有效的访问令牌：请在 Authorization: Bearer 中发送本服务签发且未过期的令牌。

problem-unauthorized-expired-detail = 访问令牌已过期，请申请新的令牌。

problem-forbidden-title = 无权操作
problem-forbidden-detail = 您的令牌不允许此操作：商户只能查看自己的数据，终端只能以自身身份操作。

problem-not_found-title = 未找到
problem-not_found-detail = 此处没有内容，或您无权查看。

problem-method_not_allowed-title = 不支持的方法
problem-method_not_allowed-detail = 此地址不支持该 HTTP 方法。

problem-malformed_json-title = 不是 JSON
problem-malformed_json-detail = 请求体不是有效的 JSON。

problem-duplicate_key-title = 键重复
problem-duplicate_key-detail = 请求体中的某个对象重复使用了同一个键。

problem-unsupported_media_type-title = 媒体类型错误
problem-unsupported_media_type-detail = 请求体必须以 application/json 发送。

problem-payload_too_large-title = 请求过大
problem-payload_too_large-detail = 请求体超过 { $limit_bytes } 字节。

problem-validation_failed-title = 请求无效
problem-validation_failed-detail = 请求被拒绝：{ $detail }。

problem-pan_not_allowed-title = 拒绝完整卡号
problem-pan_not_allowed-detail = 某个字段包含完整卡号；请只发送掩码后的卡号。未保存任何内容。

problem-idempotency_key_required-title = 需要幂等键
problem-idempotency_key_required-detail = 请发送 Idempotency-Key 请求头（1 到 255 个可见 ASCII 字符），确保重试不会被重复记账。

problem-idempotency_key_reused-title = 幂等键被重复使用
problem-idempotency_key_reused-detail = 此 Idempotency-Key 已用于另一个不同的请求；新请求请使用新的键。

problem-request_in_progress-title = 仍在处理中
problem-request_in_progress-detail = 使用此 Idempotency-Key 的请求仍在处理中，请稍后重试。

problem-batch_already_closed-title = 批次已结算
problem-batch_already_closed-detail = 此批次号已用不同内容结算过；未记入任何新内容。

problem-out_of_balance-title = 合计不符
problem-out_of_balance-detail = 终端上报的合计与交易明细之和不符；未记入任何内容。

problem-batch_outside_grace_window-title = 超过宽限截止时间
problem-batch_outside_grace_window-detail = 该批次晚于宽限截止时间，已交由运营人员处理。

problem-duplicate_transactions-title = 交易已提交过
problem-duplicate_transactions-detail = 本次结算中的部分交易已由其他批次提交；未记入任何内容。

problem-currency_not_accepted-title = 币种不被接受
problem-currency_not_accepted-detail = 批次必须使用商户的结算币种。

problem-unauthorized_transactions-title = 交易未经授权
problem-unauthorized_transactions-detail = 部分交易与主机的授权不符；未记入任何内容。待主机收到这些交易后请重新结批。

problem-merchant_exists-title = 商户已存在
problem-merchant_exists-detail = 已存在使用此 ID 的商户。

problem-terminal_exists-title = 终端已存在
problem-terminal_exists-detail = 已存在使用此 ID 的终端。

problem-batch_not_held-title = 批次未被挂起
problem-batch_not_held-detail = 该批次未交由运营人员处理。

problem-batch_not_rejected-title = 批次未被挂起
problem-batch_not_rejected-detail = 该批次不是超过宽限截止时间而挂起的批次，因此不能申请复核。

problem-endpoint_limit_reached-title = Webhook 端点过多
problem-endpoint_limit_reached-detail = 您的 Webhook 端点已达上限；请先删除一个。

problem-illegal_payout_transition-title = 付款状态不能如此变更
problem-illegal_payout_transition-detail = 付款不能从当前状态变更为该状态。

problem-payout_file_refused-title = 银行文件被拒绝
problem-payout_file_refused-detail = 银行文件被整体拒绝；未做任何更改。

problem-webhook_url_not_allowed-title = Webhook 地址不被允许
problem-webhook_url_not_allowed-detail = Webhook 地址不是允许的公共 HTTPS 地址（{ $detail }）。

problem-service_unavailable-title = 暂时不可用
problem-service_unavailable-detail = 服务暂时不可用，请稍后重试。未丢失任何内容。

problem-transaction_conflict-title = 并发冲突
problem-transaction_conflict-detail = 请求与同时进行的更改冲突，请稍后重试。未写入任何内容。

problem-rate_limited-title = 请求过多
problem-rate_limited-detail = 您的请求过多，请在 { $retry_after_seconds } 秒后重试。

problem-not_ready-title = 尚未就绪
problem-not_ready-detail = 此副本尚未就绪，请稍后重试。

problem-request_timeout-title = 请求超时
problem-request_timeout-detail = 请求耗时超过服务允许的时间，请稍后重试。

problem-http_error-title = HTTP 错误
problem-http_error-detail = 请求被 HTTP 层拒绝。

problem-internal_error-title = 服务故障
problem-internal_error-detail = 服务未能处理该请求；未写入任何内容。请重试，如持续出现请告知您的收单机构。
