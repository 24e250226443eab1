-- +goose Up
-- What `foodpipe notify` (the order-notifications group) has done about each
-- order: claimed it for sending, sent its email, or had its address refused.
--
-- A notification leaves the database: the mail server is reached by no
-- transaction. So each email goes through three steps, and this table holds
-- the two the database can: a claim (state 'sending', committed before the
-- email is sent, naming the process that sends it), then the outcome ('sent'
-- or 'refused'), written in one transaction with the group's next offsets
-- (consumer_offsets). A claim found still 'sending' by another process is the
-- window no transaction closes: its email may or may not have reached the
-- server. It is marked in_doubt and sent again, with the same Message-ID.
-- An order whose row says 'sent' or 'refused' is never sent again.
CREATE TABLE notifications (
    group_id    TEXT        NOT NULL,
    order_id    VARCHAR(50) NOT NULL,
    recipient   TEXT        NOT NULL,
    message_id  TEXT        NOT NULL,
    state       TEXT        NOT NULL CHECK (state IN ('sending', 'sent', 'refused')),
    -- sender is the process (one per run of foodpipe notify) that claimed it last.
    sender      TEXT        NOT NULL,
    claims      INT         NOT NULL DEFAULT 1,
    -- in_doubt: claimed by another process that ended before recording the
    -- outcome; the email may have gone out twice.
    in_doubt    BOOLEAN     NOT NULL DEFAULT false,
    reason      TEXT,
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at     TIMESTAMPTZ,
    PRIMARY KEY (group_id, order_id)
);

-- +goose Down
DROP TABLE notifications;
