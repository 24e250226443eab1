package lab

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Off loopback, the address printed carries the token.
func TestURLCarriesTheTokenOffLoopback(t *testing.T) {
	if u := (Access{Addr: "127.0.0.1:8080"}).URL(); u != "http://127.0.0.1:8080/" {
		t.Errorf("loopback URL %q", u)
	}
	if u := (Access{Addr: "192.0.2.7:8080", Token: "abc"}).URL(); u != "http://192.0.2.7:8080/?token=abc" {
		t.Errorf("URL with a token %q", u)
	}
	if u := (Access{Addr: "0.0.0.0:8080", Token: "abc"}).URL(); strings.Contains(u, "0.0.0.0") || !strings.HasSuffix(u, ":8080/?token=abc") {
		t.Errorf("an address on every interface is shown as %q, want this machine's name", u)
	}
}

// What stops a lab before it starts: an address in use, a log that cannot
// be opened. Neither starts anything, nor says it is starting.
func TestServeStopsBeforeStartingWhatCannotBeServed(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		o    ServeOptions
		want string
	}{
		{"an address in use", ServeOptions{Addr: busy.Addr().String()}, "serve the lab on " + busy.Addr().String()},
		{"a log in a directory that is not there", ServeOptions{Addr: "127.0.0.1:0", LogPath: filepath.Join(t.TempDir(), "none", "lab.log")}, "the lab's log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Starting = func() { t.Error("the lab says it is starting") }
			err := Serve(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Serve = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// The lab's log is the file named, appended to, or a new one in the
// temporary directory.
func TestTheLabsLogIsAppendedToOrNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("after\n")
	f.Close()
	if b, _ := os.ReadFile(path); string(b) != "before\nafter\n" {
		t.Errorf("the log holds %q, want what it held and what was added", b)
	}
	f, err = openLog("")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.Close()
	if filepath.Dir(f.Name()) != filepath.Clean(os.TempDir()) || !strings.HasPrefix(filepath.Base(f.Name()), "foodpipe-lab-") {
		t.Errorf("a new log at %s, want foodpipe-lab-*.log in %s", f.Name(), os.TempDir())
	}
}
