// Package secret keeps passwords out of what foodpipe prints and logs. It is
// the one place that knows where a PostgreSQL connection string keeps its
// password: the user info of a URL, its password= query parameter, or the
// password= keyword of the key=value form.
package secret

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask is what a password is replaced with.
const Mask = "xxxxx"

// Passwords returns the passwords conn holds, as written and, for a URL, as
// decoded, longest first.
func Passwords(conn string) []string {
	var out []string
	if strings.Contains(conn, "://") {
		if u, err := url.Parse(conn); err == nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				out = append(out, pw)
				if raw, ok := strings.CutPrefix(u.User.String(), u.User.Username()+":"); ok {
					out = append(out, raw)
				} else if i := strings.IndexByte(u.User.String(), ':'); i >= 0 {
					out = append(out, u.User.String()[i+1:])
				}
			}
			for _, pw := range u.Query()["password"] {
				if pw != "" {
					out = append(out, pw, url.QueryEscape(pw))
				}
			}
		}
	}
	for _, m := range keyword.FindAllStringSubmatch(conn, -1) {
		if pw := strings.Trim(m[1], "'"); pw != "" {
			out = append(out, pw)
		}
	}
	// Longest first, so that a password holding another is replaced whole.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// keyword finds the password in a key=value connection string or query.
var keyword = regexp.MustCompile(`password\s*=\s*('(?:\\.|[^'])*'|[^\s&]+)`)

// Scrub replaces every password of conn that appears in msg: for error
// messages of drivers that may quote the connection string.
func Scrub(msg, conn string) string {
	for _, pw := range Passwords(conn) {
		msg = strings.ReplaceAll(msg, pw, Mask)
	}
	return msg
}

// RedactURL is conn with its passwords masked, fit to log or print. A URL
// that does not parse is not shown at all: where its password is cannot be
// told.
func RedactURL(conn string) string {
	if !strings.Contains(conn, "://") {
		return keyword.ReplaceAllString(conn, "password="+Mask)
	}
	if _, err := url.Parse(conn); err != nil {
		return "(unparseable URL)"
	}
	return Scrub(conn, conn)
}
