package localpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"

	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

const server = "127.0.0.1:5432"

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestADatabaseURLIsUsedAsIs(t *testing.T) {
	u := "postgres://postgres@" + server + "/postgres?sslmode=disable"
	db, err := Resolve(context.Background(), Options{DatabaseURL: u})
	if err != nil {
		t.Fatalf("the test PostgreSQL at %s must run: %v", server, err)
	}
	defer db.Close()
	if db.Source != FromURL || db.URL != u {
		t.Errorf("got %+v", db)
	}
}

func TestABadDatabaseURLIsAnErrorWithoutItsPassword(t *testing.T) {
	_, err := Resolve(context.Background(), Options{DatabaseURL: "postgres://u:topsecret@" + closedAddr(t) + "/x?sslmode=disable&connect_timeout=2"})
	if err == nil || strings.Contains(err.Error(), "topsecret") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("err = %v", err)
	}
}

func TestTheLocalServerGetsTheDemoDatabaseCreatedOnce(t *testing.T) {
	b := make([]byte, 4)
	rand.Read(b)
	name := "foodpipe_localpg_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), localURL(server, "postgres", "postgres"))
		if err == nil {
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(context.Background())
		}
	})
	for i := 0; i < 2; i++ {
		db, err := Resolve(context.Background(), Options{LocalAddr: server, DBName: name})
		if err != nil {
			t.Fatal(err)
		}
		if db.Source != FromLocal || !strings.Contains(db.URL, "/"+name) {
			t.Fatalf("got %+v", db)
		}
		if err := ping(context.Background(), db.URL); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func TestWithNoServerATemporaryClusterStartsAndIsRemoved(t *testing.T) {
	db, err := Resolve(context.Background(), Options{LocalAddr: closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	if db.Source != FromTemp {
		t.Fatalf("source %s", db.Source)
	}
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1: %v %v", one, err)
	}
	conn.Close(context.Background())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ping(context.Background(), db.URL+"&connect_timeout=2"); err == nil {
		t.Error("the temporary server still answers after Close")
	}
	if err := db.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestWithoutServerBinariesTheErrorSaysWhatToInstall(t *testing.T) {
	saved := searchDirs
	searchDirs = func() []string { return []string{t.TempDir()} }
	t.Cleanup(func() { searchDirs = saved })
	t.Setenv("PATH", t.TempDir())
	_, err := Resolve(context.Background(), Options{LocalAddr: closedAddr(t)})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("err = %v", err)
	}
}
