-- +goose Up
-- The next Kafka offset to consume, per consumer group and partition. The
-- consumer writes it in the same transaction as the orders it covers, so the
-- database alone says how far the pipeline got: after a crash between the
-- database commit and the Kafka commit, the consumer resumes from here and no
-- order is stored twice or skipped (an exactly-once effect in the database).
-- It also fences: a batch whose first offset lies below the stored next
-- offset comes from a consumer that lost its partition, and is refused.
CREATE TABLE consumer_offsets (
    group_id        TEXT        NOT NULL,
    topic           TEXT        NOT NULL,
    kafka_partition INT         NOT NULL,
    next_offset     BIGINT      NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, kafka_partition)
);

-- +goose Down
DROP TABLE consumer_offsets;
