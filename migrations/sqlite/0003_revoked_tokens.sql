-- Revoked tokens (logout), kept until the token would have expired anyway, so that a
-- revocation survives the loss of the cache (a Redis restart without persistence).
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens(expires_at);
