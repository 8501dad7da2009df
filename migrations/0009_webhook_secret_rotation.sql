-- Rotating an endpoint's signing secret keeps the one it replaces valid for a grace period, so a
-- receiver can switch secrets without losing deliveries: while `previous_secret_expires_at` is
-- ahead, every delivery carries a signature with each secret (the newer first). The previous
-- secret is sealed exactly like the current one (same envelope, the endpoint id as associated
-- data), and credentials-key rotation re-seals both. An expired previous secret is ignored by
-- deliveries and cleared by queue maintenance.
alter table webhook_endpoint
    add column previous_secret_sealed     bytea,
    add column previous_secret_key_id     text,
    add column previous_secret_expires_at timestamptz,
    add constraint previous_secret_complete
        check (num_nulls(previous_secret_sealed, previous_secret_key_id, previous_secret_expires_at) in (0, 3));
