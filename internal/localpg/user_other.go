//go:build !unix

package localpg

import "os/exec"

// serverUser runs the server as ourselves: only Unix has root to avoid.
func serverUser(string) (func(*exec.Cmd), error) {
	return func(*exec.Cmd) {}, nil
}
