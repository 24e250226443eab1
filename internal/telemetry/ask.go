package telemetry

// Asking a running process for its health, as `foodpipe health` does for a
// container's health check: the distroless image has no shell and no curl.

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// HealthURL is the address of path (/healthz, /readyz) on the server that
// Listen started on addr (host:port). A server that listens on every
// interface is asked on this machine's loopback.
func HealthURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // the server listens on every interface; ask it locally
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// AskHealth gets url and returns the answer's status ("200 OK"); an answer
// that is not 2xx, or none, is an error that names url.
func AskHealth(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("health request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("health %s: %w", url, err)
	}
	_ = resp.Body.Close() // the body is not read; closing it cannot fail in a way that matters here
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("health %s: %s", url, resp.Status)
	}
	return resp.Status, nil
}
