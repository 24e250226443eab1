package lab

import (
	"foodpipe/internal/harness"
)

// MemberProcess is a member's child process, nil when there is none: for
// tests that ask the member itself what it owns, apart from the lab.
func (l *Lab) MemberProcess(id string) *harness.Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.process(id)
}
