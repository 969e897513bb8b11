# Problem details: a short title and a sentence per stable code. English answers keep
# the service's own specific detail; other locales use the sentence. Codes are never
# translated.

problem-unauthorized-title = Not signed in
problem-unauthorized-detail = The request carries no valid bearer token: send Authorization: Bearer with a token the service issued, not expired.

problem-unauthorized-expired-detail = The bearer token has expired; ask for a new one.

problem-forbidden-title = Not allowed
problem-forbidden-detail = Your token does not allow this: a merchant sees only its own data and a terminal acts only as itself.

problem-not_found-title = Not found
problem-not_found-detail = Nothing was found here, or it is not yours to see.

problem-method_not_allowed-title = Method not allowed
problem-method_not_allowed-detail = This address does not take this HTTP method.

problem-malformed_json-title = Not JSON
problem-malformed_json-detail = The request body is not valid JSON.

problem-duplicate_key-title = Key repeated
problem-duplicate_key-detail = An object in the request body names the same key twice.

problem-unsupported_media_type-title = Wrong media type
problem-unsupported_media_type-detail = The request body must be sent as application/json.

problem-payload_too_large-title = Request too large
problem-payload_too_large-detail = The request body is larger than { $limit_bytes } bytes.

problem-validation_failed-title = Invalid request
problem-validation_failed-detail = The request was refused: { $detail }.

problem-pan_not_allowed-title = Full card number refused
problem-pan_not_allowed-detail = A field holds a full card number; send masked card numbers only. Nothing was stored.

problem-idempotency_key_required-title = Idempotency-Key required
problem-idempotency_key_required-detail = Send an Idempotency-Key header (1 to 255 visible ASCII characters) so that a retry is never booked twice.

problem-idempotency_key_reused-title = Idempotency-Key reused
problem-idempotency_key_reused-detail = This Idempotency-Key was used before with a different request; use a new key for a new request.

problem-request_in_progress-title = Still being processed
problem-request_in_progress-detail = A request with this Idempotency-Key is still being processed; retry shortly.

problem-batch_already_closed-title = Batch already closed
problem-batch_already_closed-detail = This batch number was already closed with different content; nothing new was booked.

problem-out_of_balance-title = Totals do not match
problem-out_of_balance-detail = The terminal's totals do not match the sum of its transactions; nothing was booked.

problem-batch_outside_grace_window-title = Closed after the grace deadline
problem-batch_outside_grace_window-detail = The batch came after its grace deadline and is held for operations.

problem-duplicate_transactions-title = Transactions already presented
problem-duplicate_transactions-detail = Some transactions of this close were presented already by another batch; nothing was booked.

problem-currency_not_accepted-title = Currency not accepted
problem-currency_not_accepted-detail = The batch must be in the merchant's settlement currency.

problem-unauthorized_transactions-title = Transactions not authorized
problem-unauthorized_transactions-detail = Some transactions do not match what the card host authorized; nothing was booked. Close again once the host has them.

problem-merchant_exists-title = Merchant exists
problem-merchant_exists-detail = A merchant with this id exists already.

problem-terminal_exists-title = Terminal exists
problem-terminal_exists-detail = A terminal with this id exists already.

problem-batch_not_held-title = Batch not held
problem-batch_not_held-detail = The batch is not held for operations.

problem-batch_not_rejected-title = Batch not held
problem-batch_not_rejected-detail = The batch is not held after its grace deadline, so no review can be asked for.

problem-endpoint_limit_reached-title = Too many webhook endpoints
problem-endpoint_limit_reached-detail = You have as many webhook endpoints as allowed; delete one first.

problem-illegal_payout_transition-title = Payout cannot change so
problem-illegal_payout_transition-detail = The payout cannot move to that state from its own.

problem-payout_file_refused-title = Bank file refused
problem-payout_file_refused-detail = The bank's file was refused whole; nothing changed.

problem-webhook_url_not_allowed-title = Webhook address not allowed
problem-webhook_url_not_allowed-detail = The webhook address is not an allowed public HTTPS address ({ $detail }).

problem-service_unavailable-title = Temporarily unavailable
problem-service_unavailable-detail = The service is temporarily unavailable; retry shortly. Nothing was lost.

problem-transaction_conflict-title = Conflicting changes
problem-transaction_conflict-detail = The request collided with concurrent changes; retry shortly. Nothing was written.

problem-rate_limited-title = Too many requests
problem-rate_limited-detail = Too many requests from you; retry after { $retry_after_seconds } seconds.

problem-not_ready-title = Not ready
problem-not_ready-detail = This replica is not ready to serve; retry shortly.

problem-request_timeout-title = Took too long
problem-request_timeout-detail = The request took longer than the service allows; retry shortly.

problem-http_error-title = HTTP error
problem-http_error-detail = The request was refused by the HTTP layer.

problem-internal_error-title = Service failure
problem-internal_error-detail = The service failed to process the request; nothing was written. Retry, and tell your acquirer if it persists.
