package cli

import (
	"context"
	"strings"
	"testing"

	"foodpipe/internal/store/dbtest"
)

func TestStatusSaysPlainlyWhenTheSchemaIsNotMigrated(t *testing.T) {
	addr := broker(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", dbtest.New(t)}
	if err := newRun(t, vars...).do(context.Background(), "topic", "create"); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, vars...)
	if err := r.do(context.Background(), "status"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if !strings.Contains(out, "the database has no orders table yet: run `foodpipe migrate up`") || strings.Contains(out, "SQLSTATE") {
		t.Errorf("status before the first migration:\n%s", out)
	}
}
