package dbtest

import (
	"context"
	"net/url"

	"github.com/jackc/pgx/v5"

	"foodpipe/migrations"
)

// TemplateName names the template of a set of migrations.
var TemplateName = templateName

// Template names the template NewStore copies.
func Template() string { return templateName(migrations.FS) }

// EnsureTemplate builds the template called name, with the embedded
// migrations, unless the server has it. conn is a session on the default
// admin database.
func EnsureTemplate(conn *pgx.Conn, name string) error {
	u, err := url.Parse(DefaultAdminURL)
	if err != nil {
		return err
	}
	return template(context.Background(), conn, *u, name)
}
