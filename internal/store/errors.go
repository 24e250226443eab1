package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrStaleOffsets means a batch starts below the next offset already
	// stored for one of its partitions: another consumer stored past this
	// point (typically after a rebalance this one has not seen yet). Nothing
	// of the batch was written.
	ErrStaleOffsets = errors.New("stale offsets: partition already stored past this batch")

	// ErrConflict marks the error SetAside gets for a conflicting
	// duplicate: the order_id is stored with other content.
	ErrConflict = errors.New("order already stored with other content")

	// ErrRejected marks the Err of a Rejected row: PostgreSQL refused the row
	// itself (a data exception), so retrying it can never succeed.
	ErrRejected = errors.New("rejected by postgres")

	// ErrInvalidBatch means the batch contradicts itself (an offset range
	// that runs backwards, a partition listed twice): a programming error in
	// the caller, never retried.
	ErrInvalidBatch = errors.New("invalid batch")

	// ErrNoMigrationToRollBack is returned by MigrateDown when no migration
	// is applied.
	ErrNoMigrationToRollBack = errors.New("no applied migration to roll back")

	// ErrReadOnly marks the answer of Writable for a server that refuses
	// writes: a standby, or one whose transactions are read-only (as a
	// failover goes on, or by an operator's setting).
	ErrReadOnly = errors.New("the database is read-only")

	// ErrUnavailable marks a failure of a system beside the database that a
	// write depends on (the notifier's mail server): it passes, so
	// IsTransient holds it transient, and the writer retries it as it does a
	// database that is away.
	ErrUnavailable = errors.New("a system the write depends on is unavailable")

	// ErrRefused marks the Err of a Rejected row that a system beside the
	// database refused for good (a mail server refusing an address): the
	// row is set aside as a dead letter, never retried.
	ErrRefused = errors.New("refused for good")
)

// IsTransient reports whether err is worth retrying as is: a system beside
// the database that the write needs is away (ErrUnavailable), or the connection
// failed or timed out, or PostgreSQL refused for a reason that passes
// (serialization failure, deadlock, shutdown or restart, lack of resources,
// lock or statement timeout, a server that refuses writes for now). It is
// false for data exceptions and Rejected rows, ErrStaleOffsets, a canceled
// context, and anything it does not know.
//
// A server that refuses writes (SQLSTATE 25006: a hot standby, or a primary
// whose transactions are read-only) is what a client meets during a
// failover, until it reaches the new primary: it passes the way a restart
// does. Should an operator have made the database read-only for good, the
// writer waits just the same, and says why (Writable), until it is made
// writable again.
//
// A context deadline counts as a timeout and so as transient: a caller that
// bounds each write retries with a fresh deadline, while a caller whose own
// context has ended stops on ctx.Err() anyway.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrStaleOffsets) ||
		errors.Is(err, ErrRejected) || errors.Is(err, ErrInvalidBatch) || errors.Is(err, ErrRefused) {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return transientCode(pgErr.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// IsNotMigrated reports whether err means a table foodpipe needs is not
// there: the migrations have not been applied to this database yet.
func IsNotMigrated(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == pgerrcode.UndefinedTable
}

// IsSchema reports whether err means the database lacks the schema or the
// rights the write needs: a table or column that is not there (dropped, or
// migrations not applied), or a permission revoked. Retrying as is cannot
// help, yet nothing is wrong with the data: a person fixes the schema or the
// grants, and the same batch then goes through.
func IsSchema(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return false
	}
	switch pgErr.Code {
	case pgerrcode.UndefinedTable, pgerrcode.UndefinedColumn, pgerrcode.UndefinedFunction,
		pgerrcode.InvalidSchemaName, pgerrcode.InsufficientPrivilege:
		return true
	}
	return false
}

// transientCode reports whether a SQLSTATE names a condition that passes.
func transientCode(code string) bool {
	switch code {
	case pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected,
		pgerrcode.LockNotAvailable,                // lock_timeout
		pgerrcode.QueryCanceled,                   // statement_timeout
		pgerrcode.IdleInTransactionSessionTimeout, // a frozen writer's session, ended
		pgerrcode.AdminShutdown, pgerrcode.CrashShutdown,
		pgerrcode.CannotConnectNow,       // starting up, recovering
		pgerrcode.ReadOnlySQLTransaction: // a standby, or a primary made read-only
		return true
	}
	return pgerrcode.IsConnectionException(code) || pgerrcode.IsInsufficientResources(code)
}

// isReadOnly reports whether err is a server refusing writes: a standby,
// or a session whose transactions are read-only. A hot standby answers every
// write, and the DDL of a new connection, with this SQLSTATE.
func isReadOnly(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == pgerrcode.ReadOnlySQLTransaction
}

// isExistingOrder reports whether err is the primary-key violation of an
// order_id already stored.
func isExistingOrder(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == pgerrcode.UniqueViolation && pgErr.ConstraintName == "orders_pkey"
}

// isDataException reports whether PostgreSQL refused a value of the
// statement (class 22 data exception or class 23 integrity constraint
// violation): the fault lies in some row, not in the connection or the SQL.
func isDataException(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && (pgerrcode.IsDataException(pgErr.Code) || pgerrcode.IsIntegrityConstraintViolation(pgErr.Code))
}
