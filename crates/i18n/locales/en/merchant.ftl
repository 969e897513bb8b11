# What a merchant reads in the API's answers: why a batch has its status, when its
# money arrives, what to do next. Instants arrive formatted in the merchant's time
# zone with their offset, amounts with their currency, durations in hours and minutes.

## Durations

duration-under-a-minute = under a minute
duration-minutes = { $minutes ->
    [one] 1 minute
   *[other] { $minutes } minutes
}
duration-hours = { $hours ->
    [one] 1 hour
   *[other] { $hours } hours
}
duration-hours-minutes = { $hours ->
    [one] 1 hour
   *[other] { $hours } hours
} { $minutes ->
    [one] 1 minute
   *[other] { $minutes } minutes
}

## Why a batch has its status

batch-accepted = Closed before its cutoff, { $cutoff }: { $amount } is paid in the cycle of { $cycle_date } and expected in your bank account on { $arrival }.
batch-accepted-late = Closed { $late_by } after its cutoff, { $cutoff }, but before its grace deadline, { $grace_deadline }, so it was accepted late: { $amount } is paid one cycle later, in the cycle of { $cycle_date } instead of { $business_date }, and expected in your bank account on { $arrival }. Close your terminals before the cutoff to be paid a cycle sooner.
batch-accepted-by-operator = Closed after its grace deadline, { $grace_deadline }, and accepted by operations ("{ $reason }"): { $amount } is paid in the cycle of { $cycle_date } and expected in your bank account on { $arrival }.
batch-declined = Closed after its grace deadline, { $grace_deadline }, and declined by operations ("{ $reason }"), so it is not paid. Next step: close its transactions again in a new batch if they are still due, or contact your acquirer if you disagree.
batch-held = Closed at { $received }, after its grace deadline, { $grace_deadline }, so it is held for operations: { $amount } is not paid unless they accept it. Next step: ask for a review of this batch (on the merchant page, or POST /v1/merchants/{ $merchant }/batches/{ $batch }/review-requests).
batch-auto-closed = Terminal { $terminal } did not close its batch for { $business_date }, so the card host closed it on the terminal's behalf with the { $count ->
    [one] transaction
   *[other] { $count } transactions
} it had authorized, as if closed by its cutoff, { $cutoff }. { $amount } is paid in the cycle of { $cycle_date } and expected in your bank account on { $arrival }. If the terminal closes these transactions later, they are recognised and not paid twice.
batch-already-settled = { $count ->
    [one] 1 of its transactions had
   *[other] { $count } of its transactions had
} been settled already by the host's auto-close (batch { $batches }): they are not paid again, and its totals leave them out.
batch-unmatched = { $count ->
    [one] 1 of its transactions does
   *[other] { $count } of its transactions do
} not match what the card host authorized; operations will check { $count ->
    [one] it
   *[other] them
}.

## Unsettled transactions of a terminal

unsettled-what = { $count ->
    [one] 1 transaction
   *[other] { $count } transactions
} authorized by the host ({ $amount }) { $count ->
    [one] is
   *[other] are
} not in a closed batch yet
unsettled-auto-close = { $what }. Next step: close the terminal's batch before { $cutoff }; the money is then expected in your bank account on { $arrival }. If it is not closed, the host closes it on the terminal's behalf at { $closes_at } and the money is paid on time; a close after that only repeats these transactions, which are recognised and not paid twice.
unsettled-on-time = { $what }. Next step: close the terminal's batch before { $cutoff } to be paid on time: the money is then expected in your bank account on { $arrival }. A close after that is paid a cycle later, and after the grace deadline ({ $grace_deadline }) a batch is held for operations.
unsettled-late = { $what }, and the cutoff ({ $cutoff }) has passed. Next step: close the terminal's batch before the grace deadline ({ $grace_deadline }); it is paid a cycle later, and the money is expected in your bank account on { $arrival }. After that deadline a batch is held for operations.
unsettled-past-grace = { $what }, and the grace deadline ({ $grace_deadline }) has passed. Next step: close the terminal's batch anyway and ask for a review: the batch is held for operations until they accept it.

## Reminders

reminder-after-cutoff = Terminal { $terminal } has not closed its batch since the cutoff of { $business_date }. Next step: close it before { $grace_deadline } to be paid (a cycle later).
reminder-before-grace-deadline = Terminal { $terminal } has still not closed its batch of { $business_date }. Next step: close it before { $grace_deadline }; after that the batch is held for operations.
reminder-batch-number-gap = Terminal { $terminal } skipped batch { $count ->
    [one] number { $numbers }
   *[other] numbers { $numbers }
}. Next step: check that no batch was lost on the terminal and close any that is still open.

## Payouts

payout-pending = { $amount } is planned for your bank account and expected on { $arrival }.
payout-in-transit = { $amount } was sent to your bank and is expected on { $arrival }.
payout-paid = { $amount } was paid into your bank account ({ $arrival }).
payout-canceled = { $amount } was canceled before it was sent; the money stays payable to you and goes out with a later payout.
payout-failed = { $amount } could not be paid: { $why }. The money is safe and stays payable to you. Next step: { $next }
payout-failed-account = your bank says the account cannot take money ({ $code })
payout-failed-other = your bank returned it ({ $code })
payout-next-account = give your acquirer a working settlement bank account; payouts resume once it is changed.
payout-next-other = nothing, unless your acquirer asks; it is paid again with a later payout.
payouts-held-account = Your payouts are on hold since { $since }: your bank returned payout { $payout } ({ $code }), so the account on file cannot take money. Your money is safe and stays payable. Next step: give your acquirer a working settlement bank account; payouts resume once it is changed.
payouts-held-no-account = No settlement bank account is on file, so payouts wait. Your money is safe and stays payable. Next step: give your acquirer your bank account; payouts go out with the next export.
