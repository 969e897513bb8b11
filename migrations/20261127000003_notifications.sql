-- Merchant notifications: webhook endpoints, the event outbox, deliveries and their
-- attempts, and the reminders sent to terminals that have not closed.

-- Time-ordered ids for rows created inside SQL (deliveries), so that "newest first"
-- can order by id as it does for ids made by the service (UUID version 7).
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

CREATE TABLE webhook_endpoints (
    id                           uuid PRIMARY KEY,
    merchant_id                  text NOT NULL REFERENCES merchants (merchant_id),
    url                          text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    -- Empty means every event type.
    event_types                  text[] NOT NULL,
    secret                       text NOT NULL,
    previous_secret              text,
    previous_secret_expires_at   timestamptz,
    created_at                   timestamptz NOT NULL,
    deleted_at                   timestamptz,
    CONSTRAINT webhook_endpoints_previous_secret CHECK (
        (previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id) WHERE deleted_at IS NULL;

-- The outbox: an event is written in the transaction of the change it describes.
CREATE TABLE events (
    id           uuid PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants (merchant_id),
    type         text NOT NULL,
    created_at   timestamptz NOT NULL,
    data         jsonb NOT NULL
);
CREATE INDEX events_merchant_id_desc ON events (merchant_id, id DESC);

CREATE TABLE event_deliveries (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL REFERENCES events (id),
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id),
    status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    created_at       timestamptz NOT NULL,
    CONSTRAINT event_deliveries_once UNIQUE (event_id, endpoint_id)
);
-- What the delivery worker claims.
CREATE INDEX event_deliveries_due ON event_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX event_deliveries_failed ON event_deliveries (id DESC) WHERE status = 'failed';

CREATE TABLE delivery_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES event_deliveries (id),
    attempted_at  timestamptz NOT NULL,
    status_code   integer,
    latency_ms    integer NOT NULL CHECK (latency_ms >= 0),
    error         text
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- One reminder per terminal, business date and kind; the key is the fence that keeps
-- several replicas from sending it twice.
CREATE TABLE terminal_reminders (
    terminal_id    text NOT NULL REFERENCES terminals (terminal_id),
    business_date  date NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('after_cutoff', 'before_grace_deadline')),
    event_id       uuid NOT NULL REFERENCES events (id) DEFERRABLE INITIALLY DEFERRED,
    sent_at        timestamptz NOT NULL,
    PRIMARY KEY (terminal_id, business_date, kind)
);

-- A run of batch numbers that never arrived is announced once.
CREATE TABLE batch_gap_reminders (
    terminal_id    text NOT NULL REFERENCES terminals (terminal_id),
    first_missing  integer NOT NULL,
    last_missing   integer NOT NULL CHECK (last_missing >= first_missing),
    event_id       uuid NOT NULL REFERENCES events (id) DEFERRABLE INITIALLY DEFERRED,
    sent_at        timestamptz NOT NULL,
    PRIMARY KEY (terminal_id, first_missing, last_missing)
);
