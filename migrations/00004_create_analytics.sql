-- +goose Up
-- Aggregates kept by `foodpipe analytics`, a second consumer group reading
-- the same orders topic. Every table is keyed by the group, so that two
-- analytics groups (a replay into a new group, say) keep their own.
--
-- Exactly once: a batch's increments, the order ids they count and the
-- group's next offsets (consumer_offsets) are written in one transaction. An
-- order id already in analytics_orders_seen is never counted again, whether
-- it comes back by a re-delivery, a replay or a producer's retry.
CREATE TABLE analytics_orders_seen (
    group_id TEXT        NOT NULL,
    order_id VARCHAR(50) NOT NULL,
    PRIMARY KEY (group_id, order_id)
);

-- Revenue and order count per minute (UTC) of created_at: an order that
-- arrives late is added to the minute it was made in.
CREATE TABLE analytics_minute (
    group_id TEXT          NOT NULL,
    minute   TIMESTAMPTZ   NOT NULL,
    orders   BIGINT        NOT NULL,
    revenue  NUMERIC(18,2) NOT NULL,
    PRIMARY KEY (group_id, minute)
);

-- Per menu item (by name) and minute: quantity sold and revenue
-- (quantity × unit price).
CREATE TABLE analytics_item_minute (
    group_id TEXT          NOT NULL,
    minute   TIMESTAMPTZ   NOT NULL,
    item     TEXT          NOT NULL,
    quantity BIGINT        NOT NULL,
    revenue  NUMERIC(18,2) NOT NULL,
    PRIMARY KEY (group_id, minute, item)
);

-- Per customer: orders, total spent, and when the latest order was made.
CREATE TABLE analytics_customer (
    group_id      TEXT          NOT NULL,
    customer_id   VARCHAR(50)   NOT NULL,
    orders        BIGINT        NOT NULL,
    spent         NUMERIC(18,2) NOT NULL,
    last_order_at TIMESTAMPTZ   NOT NULL,
    PRIMARY KEY (group_id, customer_id)
);

-- Per menu item, in total.
CREATE VIEW analytics_item_total AS
    SELECT group_id, item, sum(quantity)::bigint AS quantity, sum(revenue) AS revenue
    FROM analytics_item_minute GROUP BY group_id, item;

-- +goose Down
DROP VIEW analytics_item_total;
DROP TABLE analytics_customer;
DROP TABLE analytics_item_minute;
DROP TABLE analytics_minute;
DROP TABLE analytics_orders_seen;
