package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The base images the Dockerfile names (golang:1.26-bookworm and
// gcr.io/distroless/static-debian12:nonroot) come from registries this test
// may not reach, so it makes equivalents from Debian's packages and the Go
// toolchain running the test, and passes them as BUILDER_IMAGE and
// RUNTIME_IMAGE.

// debianSuite is the Debian release both public base images are built on.
const debianSuite = "bookworm"

// baseImagesRecipe changes whenever the way the images are made changes, so
// that a cached tarball of an older recipe is not loaded.
const baseImagesRecipe = "r1"

// EnvTestCache names the variable that sets where the base images are kept
// between runs, as `docker save` tarballs; by default /var/cache/foodpipe-test
// for root, else the user's cache directory.
const EnvTestCache = "FOODPIPE_TEST_CACHE"

// EnvDebianMirror names the variable that sets the mirror debootstrap uses;
// by default debootstrap's own.
const EnvDebianMirror = "FOODPIPE_TEST_DEBIAN_MIRROR"

// nonroot is the user distroless images run as, and so does foodpipe.
const nonroot = 65532

func testCacheDir() (string, error) {
	if dir := os.Getenv(EnvTestCache); dir != "" {
		return dir, nil
	}
	if os.Geteuid() == 0 {
		return "/var/cache/foodpipe-test", nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(dir, "foodpipe-test"), nil
}

// goToolchain is the GOROOT and version of the go command the tests run with.
func goToolchain() (goroot, version string, err error) {
	out, err := exec.Command("go", "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", "", fmt.Errorf("go env GOROOT GOVERSION printed %q", out)
	}
	return f[0], f[1], nil
}

// baseImages loads the builder and runtime images into d and returns their
// tags. They are loaded from the cache when a tarball of this Go version,
// Debian suite, architecture and recipe is there; otherwise they are made
// (debootstrap takes about two minutes) and saved to it. A tarball is
// written under a temporary name and renamed, so an interrupted run leaves
// none half-written; one that does not load is made again.
func baseImages(t *testing.T, d *dockerd) (builder, runtimeImage string) {
	t.Helper()
	goroot, goVersion, err := goToolchain()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := testCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	hostCAs, err := os.ReadFile(hostCABundle())
	if err != nil {
		t.Fatalf("the host's CA certificates, which the builder trusts: %v", err)
	}
	key := fmt.Sprintf("%s-%s-%s", debianSuite, runtime.GOARCH, baseImagesRecipe)
	// The builder carries the host's CA bundle, so a change of it makes
	// another builder.
	caSum := sha256.Sum256(hostCAs)
	builder = fmt.Sprintf("foodpipe-test/builder:%s-%s-ca%x", goVersion, key, caSum[:6])
	runtimeImage = "foodpipe-test/runtime:" + key
	tarball := func(image string) string {
		return filepath.Join(cache, strings.NewReplacer("/", "_", ":", "_").Replace(image)+".tar")
	}

	begin := time.Now()
	missing := false
	for _, image := range []string{builder, runtimeImage} {
		if _, err := os.Stat(tarball(image)); err != nil {
			missing = true
			continue
		}
		if _, err := d.docker(context.Background(), "load", "--input", tarball(image)); err != nil {
			t.Logf("cached %s does not load, making it again: %v", tarball(image), err)
			os.Remove(tarball(image))
			missing = true
		}
	}
	if !missing {
		t.Logf("base images loaded from %s in %v", cache, time.Since(begin).Round(time.Second))
		return builder, runtimeImage
	}

	rootfs := debootstrap(t)
	// The runtime first: it takes Debian's CA bundle, which the builder's
	// import then replaces with the host's.
	importRuntime(t, d, rootfs, runtimeImage)
	importBuilder(t, d, rootfs, goroot, goVersion, hostCAs, builder)
	for _, image := range []string{builder, runtimeImage} {
		tmp := tarball(image) + ".tmp"
		d.must(t, "save", "--output", tmp, image)
		if err := os.Rename(tmp, tarball(image)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("base images made in %v and saved to %s", time.Since(begin).Round(time.Second), cache)
	return builder, runtimeImage
}

// rootfsDirPrefix begins the name of the directory debootstrap works in.
const rootfsDirPrefix = "foodpipe-rootfs-"

// debootstrap makes a minimal Debian root file system with CA certificates
// and time zone data, removed when the test ends.
func debootstrap(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		t.Fatalf("the image test needs debootstrap to make its base images (none can be pulled); "+
			"scripts/test-deps installs it, or set %s=1 to skip this test", EnvNoDocker)
	}
	reapOrphans(t, rootfsDirPrefix)
	dir, err := os.MkdirTemp("", rootfsDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	markOwner(t, dir)
	t.Cleanup(func() {
		// debootstrap mounts /proc and more in the target while it installs;
		// a failed run can leave them, and removing through them would reach
		// the host's.
		left, err := mountsUnder(dir)
		if err == nil {
			err = unmountAll(left)
		}
		if err != nil {
			t.Errorf("rootfs cleanup: %v; %s is left in place", err, dir)
			return
		}
		os.RemoveAll(dir)
	})
	rootfs := filepath.Join(dir, "rootfs")
	args := []string{"--variant=minbase", "--include=ca-certificates,tzdata", debianSuite, rootfs}
	if mirror := os.Getenv(EnvDebianMirror); mirror != "" {
		args = append(args, mirror)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 4096))
	}
	// What apt downloaded and indexed is of no use in an image, as in
	// Debian's own.
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"} {
		matches, _ := filepath.Glob(filepath.Join(rootfs, pattern))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	return rootfs
}

// hostCABundle is the file of CA certificates the host's TLS clients use.
func hostCABundle() string {
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		return f
	}
	return "/etc/ssl/certs/ca-certificates.crt"
}

// importBuilder imports the Debian root file system with the Go toolchain at
// /usr/local/go, set up as the golang image is. It trusts the host's CA
// certificates rather than Debian's alone: where the host reaches the Go
// module proxy through a TLS-inspecting proxy, only the host's bundle has that
// proxy's CA, and the build's module download goes the same way.
func importBuilder(t *testing.T, d *dockerd, rootfs, goroot, goVersion string, hostCAs []byte, tag string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"), hostCAs, 0o644); err != nil {
		t.Fatal(err)
	}
	cp := exec.Command("cp", "-a", goroot, filepath.Join(rootfs, "usr", "local", "go"))
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("copy GOROOT: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "go", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	pack := exec.Command("tar", "--numeric-owner", "-C", rootfs, "-cf", "-", ".")
	stdout, err := pack.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var packErr bytes.Buffer
	pack.Stderr = &packErr
	if err := pack.Start(); err != nil {
		t.Fatal(err)
	}
	dockerImport(t, d, stdout, tag,
		"ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV GOLANG_VERSION="+strings.TrimPrefix(goVersion, "go"),
		"ENV GOPATH=/go",
		// As in the golang image: build with this toolchain, never fetch another.
		"ENV GOTOOLCHAIN=local",
		"WORKDIR /go",
	)
	if err := pack.Wait(); err != nil {
		t.Fatalf("tar the builder's rootfs: %v\n%s", err, packErr.String())
	}
}

// importRuntime imports what distroless static nonroot holds: the users root,
// nobody and nonroot (65532), CA certificates and time zone data, an empty
// /tmp and nonroot's home, and nothing else: no shell, no libc, no package
// manager.
func importRuntime(t *testing.T, d *dockerd, rootfs, tag string) {
	t.Helper()
	var buf bytes.Buffer
	if err := writeRuntimeTar(&buf, rootfs); err != nil {
		t.Fatal(err)
	}
	dockerImport(t, d, &buf, tag,
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		fmt.Sprintf("USER %d", nonroot),
		"WORKDIR /home/nonroot",
	)
}

func writeRuntimeTar(w io.Writer, rootfs string) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: now})
	}
	file := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, name := range []string{"etc", "etc/ssl", "etc/ssl/certs", "home", "usr", "usr/share"} {
		if err := dir(name, 0o755, 0); err != nil {
			return fmt.Errorf("runtime tar: %w", err)
		}
	}
	if err := dir("tmp", 0o1777, 0); err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	if err := dir("home/nonroot", 0o700, nonroot); err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
		"nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", nonroot)
	if err := file("etc/passwd", []byte(passwd)); err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	if err := file("etc/group", []byte(group)); err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	certs, err := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	if err := file("etc/ssl/certs/ca-certificates.crt", certs); err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	// The zone files as the tzdata package laid them out, links included.
	zoneinfo := filepath.Join(rootfs, "usr/share/zoneinfo")
	err = filepath.WalkDir(zoneinfo, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), 0, 0, "", ""
		if e.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("runtime tar: zoneinfo: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("runtime tar: %w", err)
	}
	return nil
}

// dockerImport imports a root file system tarball read from r as tag, with
// the given Dockerfile instructions as its configuration.
func dockerImport(t *testing.T, d *dockerd, r io.Reader, tag string, changes ...string) {
	t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	args = append(args, "-", tag)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	cmd.Stdin = r
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v\n%s", tag, err, out)
	}
}
