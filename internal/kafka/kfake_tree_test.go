package kafka

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestKfakeTreeIsUpstreamPlusPatches keeps third_party/kfake, the embedded
// broker's source, equal to the kfake module that go.mod requires with
// third_party/kfake/patches applied: scripts/kfake-sync rebuilds it into a
// temporary directory (from the Go module cache, downloading the module when
// it is missing) and every file must match. A change made to the tree by hand
// fails here; it belongs in a patch (see third_party/kfake/PATCHES.md).
func TestKfakeTreeIsUpstreamPlusPatches(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root: %v", err)
	}
	tree := filepath.Join(root, "third_party", "kfake")
	rebuilt := filepath.Join(t.TempDir(), "kfake")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "kfake-sync"), "--out", rebuilt)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/kfake-sync --out: %v\n%s", err, out)
	}

	want := readTree(t, rebuilt, nil)
	got := readTree(t, tree, func(rel string) bool {
		return rel == "PATCHES.md" || rel == "patches" || strings.HasPrefix(rel, "patches/")
	})
	var missing, extra, differ []string
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case !bytes.Equal(g, w):
			differ = append(differ, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			extra = append(extra, name)
		}
	}
	if len(missing)+len(extra)+len(differ) == 0 {
		return
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	var b strings.Builder
	b.WriteString("third_party/kfake is not the kfake module go.mod requires with third_party/kfake/patches applied.\n")
	for _, f := range differ {
		b.WriteString("  differs:      third_party/kfake/" + f + "\n")
		b.WriteString(unifiedDiff(filepath.Join(rebuilt, f), filepath.Join(tree, f)))
	}
	for _, f := range missing {
		b.WriteString("  missing:      third_party/kfake/" + f + "\n")
	}
	for _, f := range extra {
		b.WriteString("  not upstream: third_party/kfake/" + f + "\n")
	}
	b.WriteString("A change to kfake goes into a patch under third_party/kfake/patches, described in PATCHES.md;\n" +
		"scripts/kfake-sync rebuilds the tree from the module and the patches.")
	t.Error(b.String())
}

// readTree returns the regular files under dir by slash-separated relative
// path, less those skip selects (a selected directory is not entered).
func readTree(t *testing.T, dir string, skip func(rel string) bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[rel] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// unifiedDiff is the start of `diff -u upstream tree`, indented, or nothing
// where diff is not installed.
func unifiedDiff(upstream, tree string) string {
	out, _ := exec.Command("diff", "-u", "--label", "upstream+patches", "--label", "third_party/kfake", upstream, tree).Output()
	lines := strings.SplitAfter(string(out), "\n")
	const most = 30
	if len(lines) > most {
		lines = append(lines[:most], "...\n")
	}
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString("      " + l)
		}
	}
	return b.String()
}
