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
-- server. It is counted in in_doubt and sent again, with the same Message-ID.
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
    -- in_doubt: how many times the order was claimed again from another
    -- process that had ended between its claim and its record: each time,
    -- the email was sent again and may have gone out once more than
    -- recorded. The receiver holds at most 1 + in_doubt copies.
    in_doubt    INT         NOT NULL DEFAULT 0,
    -- taken_from: the sender whose unsettled claim the last claim took over,
    -- if it did.
    taken_from  TEXT,
    reason      TEXT,
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at     TIMESTAMPTZ,
    PRIMARY KEY (group_id, order_id)
);

-- +goose Down
DROP TABLE notifications;
