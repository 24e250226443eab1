-- +goose Up
-- Stretches of a partition that Kafka deleted (its retention passed) before a
-- group read them: messages the group never saw, neither stored nor
-- dead-lettered. The consumer records a stretch in the transaction that
-- stores the group's next offset past it, so the loss stays on record after
-- the group has moved on; `foodpipe status` lists it. to_offset is inclusive.
CREATE TABLE expired_offsets (
    group_id        TEXT        NOT NULL,
    topic           TEXT        NOT NULL,
    kafka_partition INT         NOT NULL,
    from_offset     BIGINT      NOT NULL,
    to_offset       BIGINT      NOT NULL CHECK (to_offset >= from_offset),
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, kafka_partition, from_offset)
);

-- +goose Down
DROP TABLE expired_offsets;
