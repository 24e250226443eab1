package lab

import "errors"

var (
	// ErrUnknownReason: the lab cannot make a message refused for that reason.
	ErrUnknownReason = errors.New("no such reason")
	// ErrNoSuchConsumer: no running consumer has that id.
	ErrNoSuchConsumer = errors.New("no such consumer")
	// ErrAlreadyRunning: the analytics member runs already.
	ErrAlreadyRunning = errors.New("already running")
	// ErrNothingSent: a duplicate needs an order sent before it.
	ErrNothingSent = errors.New("no order has been sent yet")
	// ErrCannotCut: the database connection does not go over TCP, so it cannot be cut.
	ErrCannotCut = errors.New("the database is not reached over TCP")
	// ErrBusy: the same kind of fault is already under way.
	ErrBusy = errors.New("already under way")
	// ErrTooMany: the lab runs at most MaxConsumers consumers.
	ErrTooMany = errors.New("too many consumers")
	// ErrNotReplayable: the dead letter was replayed before, or is a cut-down copy.
	ErrNotReplayable = errors.New("not replayable")
	// ErrUnknownAction: no such action on a consumer.
	ErrUnknownAction = errors.New("no such action")
	// ErrBadRequest: a value out of range or malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrExternalBroker: the lab runs on the user's cluster, which it does not restart.
	ErrExternalBroker = errors.New("the broker is the user's cluster, not the lab's")
	// ErrTxnOpen: a transaction is open already; the lab holds one at a time.
	ErrTxnOpen = errors.New("a transaction is open already")
	// ErrNoTxn: no transaction is open to commit or abort.
	ErrNoTxn = errors.New("no transaction is open: begin one first")
	// ErrNoLetter: no dead letter is at that offset.
	ErrNoLetter = errors.New("no dead letter at that offset")
)
