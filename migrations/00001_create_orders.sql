-- +goose Up
-- One row per order, exactly as the consumer stored it. The Kafka partition
-- and offset the order came from are kept so that any row can be traced back
-- to its message, and so that counts per partition can be checked against the
-- topic.
CREATE TABLE orders (
    order_id        VARCHAR(50)   PRIMARY KEY,
    customer_id     VARCHAR(50)   NOT NULL,
    items           JSONB         NOT NULL,
    total_amount    NUMERIC(10,2) NOT NULL,
    status          VARCHAR(20)   NOT NULL,
    -- TIMESTAMPTZ rather than the PRD's TIMESTAMP: created_at is an instant
    -- (producers send RFC 3339 with an offset). TIMESTAMP would drop the
    -- offset and read the value in the session's TimeZone, so the same order
    -- would mean different instants to clients with different settings, and
    -- processed_at - created_at (the pipeline latency) would be off by the
    -- server's UTC offset.
    created_at      TIMESTAMPTZ   NOT NULL,
    processed_at    TIMESTAMPTZ   NOT NULL DEFAULT now(),
    kafka_partition INT           NOT NULL,
    kafka_offset    BIGINT        NOT NULL
);

-- order_id is indexed by its primary key.
CREATE INDEX idx_orders_created_at ON orders (created_at);
CREATE INDEX idx_orders_customer_id ON orders (customer_id);

-- +goose Down
DROP TABLE orders;
