-- Where an organization's audit log is streamed besides NATS: an S3 bucket
-- or Datadog's logs intake. Each destination has its own cursor over the
-- audit table (every event up to `delivered_seq` was accepted by it), so
-- a slow or broken one never holds up an append or another destination.
CREATE TABLE audit_destinations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL CHECK (kind IN ('s3', 'datadog')),
    name TEXT NOT NULL,
    -- What the kind needs (bucket, prefix, region, endpoint; site), and the
    -- names of the secrets holding its credentials (never their values).
    config TEXT NOT NULL,
    delivered_seq BIGINT NOT NULL CHECK (delivered_seq >= 0),
    last_success_at BIGINT,
    last_error TEXT,
    last_error_at BIGINT,
    -- The last run of events it will never get (too old for it, or pruned
    -- while it was stopped), kept until the next gap.
    last_gap TEXT,
    -- Why delivery stopped until someone acts (a refused key, a bucket
    -- without Object Lock); NULL while it goes on.
    stopped TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT
);
CREATE UNIQUE INDEX audit_destinations_by_name ON audit_destinations (organization_id, name)
    WHERE removed_at IS NULL;
