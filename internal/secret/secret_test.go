package secret

import (
	"strings"
	"testing"
)

func TestRedactURLMasksEveryFormOfPassword(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a URL with user and password", "postgres://bob:s3cr3t@db:5432/orders", "postgres://bob:xxxxx@db:5432/orders"},
		{"a URL-encoded password", "postgres://bob:p%40ss%2Fw@db/orders", "postgres://bob:xxxxx@db/orders"},
		{"a password in the query", "postgres://bob@db/orders?sslmode=require&password=s3cr3t", "postgres://bob@db/orders?sslmode=require&password=xxxxx"},
		{"the key=value form", "host=db user=bob password=s3cr3t dbname=orders", "host=db user=bob password=xxxxx dbname=orders"},
		{"a quoted key=value password", "host=db password = 's3 cr\\'3t' dbname=orders", "host=db password=xxxxx dbname=orders"},
		{"a URL that does not parse is not shown", "postgres://u:secret@h:port/db", "(unparseable URL)"},
		{"a URL's password is hidden, its query kept", "postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"a keyword/value password with spaces around '=' and an escaped quote", "host=h password = 'se cr\\'et' dbname=db", "host=h password=xxxxx dbname=db"},
		{"no password is left as given", "postgres://", "postgres://"},
		{"a user without a password", "postgres://bob@db/orders", "postgres://bob@db/orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubRemovesThePasswordFromAnyMessage(t *testing.T) {
	conn := "postgres://bob:hunter2@db:5432/orders"
	msg := Scrub(`cannot parse "postgres://bob:hunter2@db:5432/orders": failed (password hunter2)`, conn)
	if strings.Contains(msg, "hunter2") {
		t.Errorf("the password is still there: %s", msg)
	}
}
