-- Sessions of the web pages (/merchant/ and /ops/): a bearer token exchanged for a
-- cookie. Replicas share them through this table. Only a SHA-256 of the random
-- session id is kept, so a copy of the table signs nobody in.
CREATE TABLE web_sessions (
    id_sha256   bytea PRIMARY KEY
        CONSTRAINT web_sessions_id_length CHECK (octet_length(id_sha256) = 32),
    role        text NOT NULL
        CONSTRAINT web_sessions_role CHECK (role IN ('merchant', 'ops')),
    -- Who signed in: the merchant id, or the operator named by the token's `sub`.
    subject     text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    merchant_id text REFERENCES merchants (merchant_id),
    -- Every form of the session carries it; a POST without it is refused.
    csrf_token  text NOT NULL CHECK (length(csrf_token) = 64),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT web_sessions_merchant_iff_role CHECK ((role = 'merchant') = (merchant_id IS NOT NULL)),
    CONSTRAINT web_sessions_expires_after_created CHECK (expires_at > created_at)
);

-- Expired sessions are deleted by age.
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);
