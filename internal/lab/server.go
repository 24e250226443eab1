package lab

// The HTTP side: the page, the event stream, and the actions. Every request
// must name the lab's own host (a DNS-rebinding page names its own), every
// action is a POST from the lab's own origin (a cross-site form or fetch
// carries its site's Origin), and on any address but loopback every request
// must carry the token printed at start, as Jupyter does.

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"foodpipe/internal/order"
)

//go:embed web
var webFiles embed.FS

// tokenCookie carries the token once the page was opened with ?token=.
const tokenCookie = "foodpipe_lab_token" //nolint:gosec // the cookie's name, not a credential

// Access says who may use the lab's page.
type Access struct {
	// Addr is the address the server listens on (host:port, the real port).
	Addr string
	// Token, when not empty, must come with every request: as ?token= on
	// the first visit (which sets a cookie), the cookie, or X-Lab-Token.
	Token string
}

// NewToken makes a token for Access, 128 random bits in hex.
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand does not fail on the systems Go supports
	return hex.EncodeToString(b)
}

// IsLoopback reports whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL is the address to open, with the token when one is needed. An
// address on every interface is shown with this machine's name.
func (a Access) URL() string {
	host, port, _ := net.SplitHostPort(a.Addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	u := "http://" + net.JoinHostPort(host, port) + "/"
	if a.Token != "" {
		u += "?token=" + a.Token
	}
	return u
}

// Handler serves the page, the stream and the actions.
func (l *Lab) Handler(a Access) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFiles, "web") // the directory is embedded: it is there
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if t := r.URL.Query().Get("token"); t != "" && a.Token != "" {
			// The token moves from the address bar into a cookie the
			// page's own requests carry, and out of the history.
			// Not Secure: the lab serves plain HTTP, where a browser would
			// drop a Secure cookie.
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}) //nolint:gosec // see above
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	mux.HandleFunc("GET /events", l.serveEvents)
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, _ *http.Request) {
		l.mu.Lock()
		b := l.last
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b) // a client gone away is not an error here
	})
	l.actions(mux)
	return guard(a, mux)
}

// guard refuses what the lab must not serve, then hands on.
func guard(a Access, next http.Handler) http.Handler {
	loop := IsLoopback(a.Addr)
	_, port, _ := net.SplitHostPort(a.Addr)
	hosts := []string{a.Addr}
	if loop {
		hosts = append(hosts, "localhost:"+port, "127.0.0.1:"+port, "[::1]:"+port)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		// On loopback the Host must be the lab's own: a page on another
		// site that rebinds its name to 127.0.0.1 sends its own name. On
		// another address the machine may have many names; the token
		// stands in.
		if loop && !slices.Contains(hosts, strings.ToLower(r.Host)) {
			http.Error(w, "refused: the Host header is not this lab's address", http.StatusForbidden)
			return
		}
		if a.Token != "" && !hasToken(r, a.Token) {
			http.Error(w, "refused: open the address printed at start, with its token", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if r.Method != http.MethodPost {
				http.Error(w, "refused: actions are POSTs", http.StatusMethodNotAllowed)
				return
			}
			if o := r.Header.Get("Origin"); o != "http://"+r.Host {
				http.Error(w, "refused: an action must come from the lab's own page (Origin "+o+")", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func hasToken(r *http.Request, token string) bool {
	got := r.Header.Get("X-Lab-Token")
	if c, err := r.Cookie(tokenCookie); err == nil && got == "" {
		got = c.Value
	}
	if got == "" && r.Method == http.MethodGet && r.URL.Path == "/" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// serveEvents streams a snapshot on every tick, the latest one first.
func (l *Lab) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte, 4)
	l.mu.Lock()
	if l.ctx.Err() != nil {
		l.mu.Unlock()
		http.Error(w, "the lab is stopping", http.StatusServiceUnavailable)
		return
	}
	l.subs[ch] = struct{}{}
	if l.last != nil {
		ch <- l.last
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.subs, ch) // Close may have taken it out already
		l.mu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b, open := <-ch:
			if !open {
				return
			}
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		case <-keep.C:
			// A comment line keeps proxies from closing an idle stream.
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// actions registers the POST endpoints. Each takes a small JSON body, read
// by decode; those without parameters (act) take {} or nothing.
func (l *Lab) actions(mux *http.ServeMux) {
	act := func(pattern string, do func(r *http.Request) error) {
		mux.HandleFunc("POST "+pattern, func(w http.ResponseWriter, r *http.Request) {
			if decode(w, r, nil) {
				reply(w, do(r))
			}
		})
	}
	// Each request decodes into its own value: the handlers run at once.
	mux.HandleFunc("POST /api/producer", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Rate   float64 `json:"rate"`
			Paused bool    `json:"paused"`
		}
		if decode(w, r, &b) {
			reply(w, l.SetRate(b.Rate, b.Paused))
		}
	})
	act("/api/consumers", func(*http.Request) error { _, err := l.AddConsumer(); return err })
	act("/api/analytics/start", func(*http.Request) error { return l.StartAnalytics() })
	act("/api/analytics/stop", func(*http.Request) error { return l.StopAnalytics() })
	act("/api/semantics/start", func(*http.Request) error { return l.StartTeaching() })
	act("/api/semantics/kill", func(*http.Request) error { return l.KillSemantics() })
	act("/api/notify/start", func(*http.Request) error { return l.StartNotifier() })
	act("/api/notify/kill", func(*http.Request) error { return l.KillNotifier() })
	act("/api/consumers/{id}/{action}", func(r *http.Request) error {
		return l.Signal(r.PathValue("id"), r.PathValue("action"))
	})
	mux.HandleFunc("POST /api/send/invalid", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Reason string `json:"reason"`
		}
		if decode(w, r, &b) {
			reply(w, l.SendInvalid(r.Context(), order.Reason(b.Reason)))
		}
	})
	mux.HandleFunc("POST /api/send/duplicate", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Conflicting bool `json:"conflicting"`
		}
		if decode(w, r, &b) {
			reply(w, l.SendDuplicate(r.Context(), b.Conflicting))
		}
	})
	mux.HandleFunc("POST /api/db/cut", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Seconds float64 `json:"seconds"`
		}
		if decode(w, r, &b) {
			reply(w, l.CutDatabase(time.Duration(b.Seconds*float64(time.Second))))
		}
	})
	mux.HandleFunc("POST /api/broker/restart", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Seconds float64 `json:"seconds"`
		}
		if decode(w, r, &b) {
			if b.Seconds < 0 || b.Seconds > 60 {
				reply(w, fmt.Errorf("%w: the broker stays down from 0 to 60 s", ErrBadRequest))
				return
			}
			reply(w, l.RestartBroker(time.Duration(b.Seconds*float64(time.Second))))
		}
	})
	mux.HandleFunc("POST /api/dlq/replay", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Offset int64 `json:"offset"`
		}
		if decode(w, r, &b) {
			reply(w, l.Replay(r.Context(), b.Offset))
		}
	})
	l.txnActions(mux)
}

// decode reads an action's body into v: one JSON object of v's fields and
// nothing after it but whitespace. A decoder stops at the end of the first
// value, so {"rate":5}{"rate":9} would otherwise be read as its first half
// and the rest dropped unseen; whoever sent it meant something else, and is
// told so. With v nil the action has no parameters and takes {} or an empty
// body. Every action's body comes through here; on failure it has replied.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, 4<<10)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var err error
	if v == nil {
		if err = dec.Decode(&struct{}{}); errors.Is(err, io.EOF) {
			err = nil
		}
	} else {
		err = dec.Decode(v)
	}
	var rest []byte
	if err == nil {
		rest, err = io.ReadAll(io.MultiReader(dec.Buffered(), body))
	}
	if err == nil && strings.Trim(string(rest), " \t\r\n") != "" { // JSON's whitespace
		err = errors.New("the body must be one JSON object, and nothing after it but whitespace")
	}
	if err != nil {
		reply(w, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return false
	}
	return true
}

// reply answers an action: 200 {"ok":true}, or a status that says whose
// fault it was and {"error": why}.
func reply(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err == nil {
		_, _ = w.Write([]byte(`{"ok":true}` + "\n")) // a client gone away is not an error here
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrUnknownReason), errors.Is(err, ErrUnknownAction):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNoSuchConsumer), errors.Is(err, ErrNoLetter):
		code = http.StatusNotFound
	case errors.Is(err, ErrBusy), errors.Is(err, ErrTooMany), errors.Is(err, ErrNotReplayable), errors.Is(err, ErrAlreadyRunning),
		errors.Is(err, ErrCannotCut), errors.Is(err, ErrExternalBroker), errors.Is(err, ErrNothingSent),
		errors.Is(err, ErrNoTeaching), errors.Is(err, ErrNoOrders), errors.Is(err, ErrNoNotifier),
		errors.Is(err, ErrTxnOpen), errors.Is(err, ErrNoTxn):
		code = http.StatusConflict
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()}) // as above
}
