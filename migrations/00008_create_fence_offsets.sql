-- +goose Up
-- The offset fence as a function that fails when it refuses: it stores the
-- next offset of every partition of a batch, but only where the stored one
-- does not lie beyond the batch's first offset, and raises SQLSTATE FP001
-- when any partition was stored past (another member owns it now). A fence
-- that fails its statement aborts the transaction by itself, so the batch's
-- COMMIT can travel in the same round trip as the fence and the rows: when
-- the fence refuses, PostgreSQL skips what follows and nothing is committed.
-- The rows it writes stay locked until the transaction ends, so a second
-- member holding the same partitions waits here and then finds itself fenced.
-- +goose StatementBegin
CREATE FUNCTION fence_offsets(p_group TEXT, p_topics TEXT[], p_partitions INT[], p_froms BIGINT[], p_nexts BIGINT[])
RETURNS INT LANGUAGE plpgsql AS $$
DECLARE
    stored INT;
BEGIN
    WITH input AS (
        SELECT * FROM unnest(p_topics, p_partitions, p_froms, p_nexts) AS t(topic, kafka_partition, from_offset, next_offset)
    ), up AS (
        INSERT INTO consumer_offsets AS c (group_id, topic, kafka_partition, next_offset)
        SELECT p_group, i.topic, i.kafka_partition, i.next_offset FROM input i
        ON CONFLICT (group_id, topic, kafka_partition) DO UPDATE
            SET next_offset = EXCLUDED.next_offset, updated_at = now()
            WHERE c.next_offset <= (SELECT i.from_offset FROM input i
                WHERE i.topic = EXCLUDED.topic AND i.kafka_partition = EXCLUDED.kafka_partition)
        RETURNING 1
    )
    SELECT count(*) INTO stored FROM up;
    IF stored <> cardinality(p_topics) THEN
        RAISE EXCEPTION 'stale offsets: group % has a partition stored past this batch', p_group
            USING ERRCODE = 'FP001';
    END IF;
    RETURN stored;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION fence_offsets(TEXT, TEXT[], INT[], BIGINT[], BIGINT[]);
