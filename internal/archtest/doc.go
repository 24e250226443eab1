// Package archtest holds no code, only a test: the rules of which foodpipe
// package may import which, and a few symbols that belong to one place, as a
// table checked against what `go list` says the packages import
// (ARCHITECTURE.md, "Import rules"). A package that appears without a rule
// fails the test until one is added.
package archtest
