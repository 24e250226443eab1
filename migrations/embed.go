// Package migrations holds foodpipe's database schema as numbered goose SQL
// migrations, embedded in the binary so that `foodpipe migrate up` needs no
// files next to it and the schema a binary expects always travels with it.
package migrations

import "embed"

// FS holds every *.sql migration in this directory, in goose's
// NNNNN_name.sql form.
//
//go:embed *.sql
var FS embed.FS
