-- +goose Up
-- The dead-letter outbox. A message the consumer sets aside (invalid, a
-- conflicting duplicate, a row PostgreSQL refused) is written here in the same
-- transaction as the batch's orders and offsets, so it is durable before the
-- offset that covers it is stored; it is then published to the dead-letter
-- topic and marked. A crash between the commit and the publish leaves the row
-- unpublished, and the next consumer of the group publishes it.
CREATE TABLE dead_letters (
    id               BIGSERIAL   PRIMARY KEY,
    group_id         TEXT        NOT NULL,
    -- The topic as consumer_offsets names it (name@id): offsets restart at 0
    -- when a topic is created again.
    topic_scope      TEXT        NOT NULL,
    source_topic     TEXT        NOT NULL,
    source_partition INT         NOT NULL,
    source_offset    BIGINT      NOT NULL,
    reason           TEXT        NOT NULL,
    error            TEXT        NOT NULL,
    msg_key          BYTEA,
    msg_value        BYTEA,
    -- The original message's headers, in order.
    header_keys      BYTEA[]     NOT NULL DEFAULT '{}',
    header_values    BYTEA[]     NOT NULL DEFAULT '{}',
    failed_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at     TIMESTAMPTZ,
    -- Why the dead-letter topic can never take it (too large, refused,
    -- not authorized); such a letter is not tried again and lives here.
    publish_error    TEXT,
    -- A message is set aside once per group: a batch written again after a
    -- failed commit does not record it twice.
    UNIQUE (group_id, topic_scope, source_partition, source_offset)
);

-- What the publisher looks for: the group's unpublished dead letters.
CREATE INDEX idx_dead_letters_unpublished ON dead_letters (group_id, id) WHERE published_at IS NULL AND publish_error IS NULL;

-- +goose Down
DROP TABLE dead_letters;
