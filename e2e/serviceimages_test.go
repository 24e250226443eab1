package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The compose stack's other images (postgres:17, prom/prometheus) cannot be
// pulled here either, so the compose test builds stand-ins from Debian's
// packages on top of the builder base image (a Debian root file system), as
// the base images are made: bookworm's PostgreSQL 15 and Prometheus 2.42.

// pgStartScript starts PostgreSQL as the postgres image does for what the
// stack uses of it: on an empty data directory it runs initdb with
// POSTGRES_PASSWORD for user postgres and creates POSTGRES_DB; then it runs
// the server on 127.0.0.1, port PGPORT.
const pgStartScript = `#!/bin/sh
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
data=/var/lib/postgresql/data/pgdata
if [ ! -s "$data/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  "$bin/initdb" -D "$data" -U postgres --pwfile=/tmp/pwfile --auth-host=scram-sha-256 --auth-local=trust >/dev/null
  rm -f /tmp/pwfile
  echo "CREATE DATABASE $POSTGRES_DB" | "$bin/postgres" --single -D "$data" postgres >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -c unix_socket_directories=/tmp "$@"
`

// noServices keeps a package's maintainer scripts from starting its service
// while the image is built, as scripts/test-deps does on the host.
const noServices = "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d"

// serviceImageRecipes are the Dockerfiles of the stand-ins, by role.
func serviceImageRecipes(builder string) map[string]string {
	script := base64.StdEncoding.EncodeToString([]byte(pgStartScript))
	return map[string]string{
		"postgres": "FROM " + builder + `
RUN ` + noServices + ` && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data
RUN echo ` + script + ` | base64 -d > /usr/local/bin/pg-start && chmod 755 /usr/local/bin/pg-start
USER postgres
ENTRYPOINT ["/usr/local/bin/pg-start"]
`,
		// wget for the health check the stack gives Prometheus.
		"prometheus": "FROM " + builder + `
RUN ` + noServices + ` && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
`,
	}
}

// serviceImages loads or builds the stand-ins and returns their tags by role.
// Each is kept in the test cache as a `docker save` tarball named for its
// recipe, so it is built once per recipe and builder.
func serviceImages(t *testing.T, d *dockerd, builder string) map[string]string {
	t.Helper()
	cache, err := testCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for role, recipe := range serviceImageRecipes(builder) {
		sum := sha256.Sum256([]byte(recipe))
		tag := fmt.Sprintf("foodpipe-test/%s:%x", role, sum[:6])
		tags[role] = tag
		tarball := filepath.Join(cache, strings.NewReplacer("/", "_", ":", "_").Replace(tag)+".tar")
		begin := time.Now()
		if _, err := os.Stat(tarball); err == nil {
			if _, err := d.docker(context.Background(), "load", "--input", tarball); err == nil {
				t.Logf("%s loaded from %s in %v", tag, cache, time.Since(begin).Round(100*time.Millisecond))
				continue
			}
			os.Remove(tarball)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		// The classic builder: nothing here needs BuildKit, and apt reaches
		// Debian's mirror through the host's network (the daemon has no bridge).
		cmd := exec.CommandContext(ctx, d.cli, "build", "--network", "host", "-t", tag, "-")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_BUILDKIT=0")
		cmd.Stdin = strings.NewReader(recipe)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", tag, err, tail(string(out), 8192))
		}
		tmp := tarball + ".tmp"
		d.must(t, "save", "--output", tmp, tag)
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s built from Debian's packages in %v", tag, time.Since(begin).Round(time.Second))
	}
	return tags
}

// mailImage loads or builds the Dockerfile's mail target (Mailpit at the
// version go.mod pins) as foodpipe-mail:local, the compose file's name for
// it. It is kept in the test cache as a `docker save` tarball named for
// what it is built from: the Dockerfile, go.mod, go.sum and the builder.
func mailImage(t *testing.T, d *dockerd, builder, runtimeImage string) {
	t.Helper()
	const tag = "foodpipe-mail:local"
	cache, err := testCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, f := range []string{"Dockerfile", "go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	h.Write([]byte(builder + "\n" + runtimeImage))
	tarball := filepath.Join(cache, fmt.Sprintf("foodpipe-mail_%x.tar", h.Sum(nil)[:6]))
	if _, err := os.Stat(tarball); err == nil {
		if _, err := d.docker(context.Background(), "load", "--input", tarball); err == nil {
			return
		}
		os.Remove(tarball)
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// BuildKit, for the Dockerfile's cache mounts; the module proxy through
	// the host's network (the daemon has no bridge).
	cmd := exec.CommandContext(ctx, d.cli, "build", "--network", "host", "--target", "mail",
		"--build-arg", "BUILDER_IMAGE="+builder, "--build-arg", "RUNTIME_IMAGE="+runtimeImage, "-t", tag, "..")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_BUILDKIT=1", "BUILDKIT_PROGRESS=plain")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, tail(string(out), 8192))
	}
	tmp := tarball + ".tmp"
	d.must(t, "save", "--output", tmp, tag)
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s (the Dockerfile's mail target) built in %v", tag, time.Since(begin).Round(time.Second))
}
