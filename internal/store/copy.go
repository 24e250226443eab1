package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/order"
)

// copyBufs recycles COPY buffers (some 200 bytes a row) between batches.
var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

// copyRows sends the rows to PostgreSQL with sql, a COPY ... FROM STDIN
// BINARY of orderColumns. The rows are encoded here, straight into one
// buffer, rather than by pgx's CopyFrom, which looks up an encode plan and
// boxes every value into an interface: that costs more Go CPU than
// PostgreSQL spends storing the row, on a machine whose cores the two share.
func (w *batchWrite) copyRows(ctx context.Context, tx pgx.Tx, sql string, rows []int) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := beginCopy(*bp)
	for _, i := range rows {
		buf = appendRow(buf, &w.b.Rows[i])
	}
	buf = endCopy(buf)
	*bp = buf
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), sql)
	return err
}

// insertArgs are the arrays of insertOrders for rows. The items' JSON
// shares one buffer, which the arrays point into until the statement is
// sent.
func (w *batchWrite) insertArgs(rows []int) []any {
	n := len(rows)
	ids, customers, statuses := make([]string, n), make([]string, n), make([]string, n)
	items, cents, created := make([][]byte, n), make([]int64, n), make([]time.Time, n)
	parts, offsets := make([]int32, n), make([]int64, n)
	var buf []byte
	for k, i := range rows {
		r := &w.b.Rows[i]
		o := &r.Order
		at := len(buf)
		buf = o.AppendItemsJSON(buf)
		items[k] = buf[at:len(buf):len(buf)]
		ids[k], customers[k], statuses[k] = o.OrderID, o.CustomerID, string(o.Status)
		cents[k], created[k], parts[k], offsets[k] = int64(o.TotalAmount), o.CreatedAt, r.Partition, r.Offset
	}
	return []any{ids, customers, items, cents, statuses, created, parts, offsets}
}

// beginCopy starts a binary COPY stream in buf: the signature, no flags,
// no header extension.
func beginCopy(buf []byte) []byte {
	buf = append(buf[:0], "PGCOPY\n\377\r\n\000"...)
	return binary.BigEndian.AppendUint64(buf, 0)
}

// endCopy ends a binary COPY stream: a tuple of -1 fields.
func endCopy(buf []byte) []byte { return binary.BigEndian.AppendUint16(buf, 0xffff) }

// pgEpoch is where PostgreSQL counts timestamps from: 2000-01-01 UTC, in
// Unix microseconds.
var pgEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// appendRow appends r as one binary COPY tuple of orderColumns: the number
// of fields, then each field as its length and its type's binary form.
func appendRow(buf []byte, r *Row) []byte {
	o := &r.Order
	buf = binary.BigEndian.AppendUint16(buf, 8)
	buf = appendText(buf, o.OrderID)
	buf = appendText(buf, o.CustomerID)
	buf = appendItemsJSONB(buf, o)
	buf = appendNumeric(buf, int64(o.TotalAmount))
	buf = appendText(buf, string(o.Status))
	buf = appendInt8(buf, o.CreatedAt.UnixMicro()-pgEpoch) // timestamptz
	buf = binary.BigEndian.AppendUint32(buf, 4)
	buf = binary.BigEndian.AppendUint32(buf, uint32(r.Partition))
	return appendInt8(buf, r.Offset)
}

// appendText appends s as text (or varchar). PostgreSQL checks that it is
// valid UTF-8 without NUL bytes.
func appendText(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// appendItemsJSONB appends the items as jsonb: a version byte, then the
// canonical JSON text, which PostgreSQL parses. The text is written in
// place and its length filled in after.
func appendItemsJSONB(buf []byte, o *order.Order) []byte {
	at := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	buf = append(buf, 1)
	buf = o.AppendItemsJSON(buf)
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf
}

func appendInt8(buf []byte, v int64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

// appendNumeric appends cents/100 as a numeric with two decimals. The
// binary numeric is a sign, a scale, and base-10000 digits with the weight
// (power of 10000) of the first: 21.47 is the digits 21 and 4700, weight 0.
func appendNumeric(buf []byte, cents int64) []byte {
	const positive, negative = 0x0000, 0x4000
	sign := uint16(positive)
	abs := uint64(cents)
	if cents < 0 {
		sign, abs = negative, -abs
	}
	whole, frac := abs/100, abs%100

	var digits [6]uint16 // the whole part, least significant first
	n := 0
	for ; whole > 0; whole /= 10000 {
		digits[n] = uint16(whole % 10000)
		n++
	}
	ndigits, weight := n, n-1
	if frac != 0 {
		ndigits++
	}
	if ndigits == 0 {
		weight = 0 // zero has no digits
	}

	buf = binary.BigEndian.AppendUint32(buf, uint32(8+2*ndigits))
	buf = binary.BigEndian.AppendUint16(buf, uint16(ndigits))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, 2) // display scale: two decimals
	for i := n - 1; i >= 0; i-- {
		buf = binary.BigEndian.AppendUint16(buf, digits[i])
	}
	if frac != 0 {
		buf = binary.BigEndian.AppendUint16(buf, uint16(frac*100))
	}
	return buf
}
