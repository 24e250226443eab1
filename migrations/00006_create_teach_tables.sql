-- +goose Up
-- The tables of the two teaching groups (internal/semantics), which read the
-- orders topic beside the real group to show what weaker delivery semantics
-- do to a table when a member is killed: at-most-once commits its offsets to
-- Kafka before it writes, at-least-once writes before it commits. Neither has
-- a unique key on order_id, and neither stores offsets here: an order stored
-- twice stays as two rows, an order never written is simply absent. Nothing
-- of the pipeline reads them.
CREATE TABLE teach_at_most_once (
    order_id        VARCHAR(50) NOT NULL,
    kafka_partition INT         NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    stored_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE teach_at_least_once (
    order_id        VARCHAR(50) NOT NULL,
    kafka_partition INT         NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    stored_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Not unique: counting an order's rows is how a double is found.
CREATE INDEX idx_teach_at_most_once_order_id ON teach_at_most_once (order_id);
CREATE INDEX idx_teach_at_least_once_order_id ON teach_at_least_once (order_id);

-- +goose Down
DROP TABLE teach_at_least_once;
DROP TABLE teach_at_most_once;
