package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// The workflow runs the README's test command next to a PostgreSQL, lints and
// builds every image target.
func TestGitHubWorkflow(t *testing.T) {
	wf := readYAML(t, ".github/workflows/ci.yml")
	jobs, _ := wf["jobs"].(map[string]any)
	var runs []string
	var uses []string
	hasPostgres := false
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		if svc, ok := job["services"].(map[string]any); ok {
			if pg, ok := svc["postgres"].(map[string]any); ok && strings.HasPrefix(pg["image"].(string), "postgres:") {
				hasPostgres = true
			}
		}
		steps, _ := job["steps"].([]any)
		for _, s := range steps {
			step, _ := s.(map[string]any)
			if r, ok := step["run"].(string); ok {
				runs = append(runs, r)
			}
			if u, ok := step["uses"].(string); ok {
				uses = append(uses, u)
			}
		}
	}
	joined := strings.Join(runs, "\n")
	if !strings.Contains(joined, "make test") || !hasPostgres {
		t.Errorf("the workflow must run make test with a postgres service; runs %q", runs)
	}
	// The image and compose tests fail unless they run as root (they start
	// a Docker daemon of their own), and GitHub's runner is not root.
	for _, r := range runs {
		if strings.Contains(r, "make test") && !regexp.MustCompile(`\bsudo\b.*\bmake test\b`).MatchString(r) {
			t.Errorf("the workflow runs %q as the runner's user: the image and compose tests need root (sudo)", r)
		}
	}
	if !strings.Contains(joined, "make lint") {
		t.Errorf("the workflow must lint with make lint (golangci-lint built with go.mod's Go); runs %q", runs)
	}
	for _, want := range []string{"docker/build-push-action"} {
		if !strings.Contains(strings.Join(uses, " "), want) {
			t.Errorf("the workflow does not use %s", want)
		}
	}
}

func TestGolangciConfigIsVersion2(t *testing.T) {
	c := readYAML(t, ".golangci.yml")
	if c["version"] != "2" {
		t.Errorf("version %v, want \"2\"", c["version"])
	}
	if _, ok := c["linters"].(map[string]any); !ok {
		t.Error("no linters section")
	}
}

// The Makefile keeps `make test` and has the deployment targets the docs name.
func TestMakefileTargets(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"test:", "lint:", "docker-build:", "compose-up:", "compose-down:"} {
		if !strings.Contains(string(b), "\n"+target) {
			t.Errorf("the Makefile has no %s target", strings.TrimSuffix(target, ":"))
		}
	}
}

// The lint job builds golangci-lint with the Go of go.mod (make lint runs it
// with go run at a pinned version): a prebuilt golangci-lint, such as the
// one golangci-lint-action downloads, refuses a module whose Go is newer
// than the one it was built with.
func TestCILintBuildsGolangciLintWithOurGo(t *testing.T) {
	wf := readYAML(t, ".github/workflows/ci.yml")
	jobs, _ := wf["jobs"].(map[string]any)
	lint, ok := jobs["lint"].(map[string]any)
	if !ok {
		t.Fatal("the workflow has no lint job")
	}
	steps, _ := lint["steps"].([]any)
	setupGo, runsMakeLint := false, false
	for _, s := range steps {
		step, _ := s.(map[string]any)
		uses, _ := step["uses"].(string)
		if strings.HasPrefix(uses, "golangci/golangci-lint-action") {
			t.Errorf("the lint job uses %s, a prebuilt golangci-lint", uses)
		}
		if strings.HasPrefix(uses, "actions/setup-go") {
			with, _ := step["with"].(map[string]any)
			setupGo = with["go-version-file"] == "go.mod"
		}
		if run, _ := step["run"].(string); strings.TrimSpace(run) == "make lint" {
			runsMakeLint = setupGo // only counts after Go is set up from go.mod
		}
	}
	if !runsMakeLint {
		t.Error("the lint job must set up Go from go.mod (actions/setup-go, go-version-file: go.mod) and then run make lint")
	}
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	if !regexp.MustCompile(`(?m)^GOLANGCI_LINT_VERSION \?= v\d+\.\d+\.\d+$`).MatchString(mk) {
		t.Error("the Makefile does not pin GOLANGCI_LINT_VERSION to an exact version")
	}
	if !regexp.MustCompile(`(?m)^lint:\n\t\$\(GO\) run github\.com/golangci/golangci-lint/v2/cmd/golangci-lint@\$\(GOLANGCI_LINT_VERSION\) run \./\.\.\.$`).MatchString(mk) {
		t.Error("make lint does not build golangci-lint with go run at GOLANGCI_LINT_VERSION")
	}
}

// The release workflow publishes the one image on a version tag, to the
// registry the Kubernetes base names, stamped with the tag and the commit.
func TestReleaseWorkflowPublishesTheImageOnTags(t *testing.T) {
	wf := readYAML(t, ".github/workflows/release.yml")
	// YAML 1.1 reads the key on as true, as the YAML library here does.
	on, _ := wf["on"].(map[string]any)
	if on == nil {
		on, _ = wf["true"].(map[string]any)
	}
	push, _ := on["push"].(map[string]any)
	if tags, _ := push["tags"].([]any); len(tags) != 1 || tags[0] != "v*" || len(on) != 1 {
		t.Errorf("release runs on %v, want on pushed tags v* only", on)
	}
	if perms, _ := wf["permissions"].(map[string]any); perms["packages"] != "write" {
		t.Errorf("permissions %v, want packages: write to push to ghcr.io", wf["permissions"])
	}
	jobs, _ := wf["jobs"].(map[string]any)
	var pushed, meta map[string]any
	for _, j := range jobs {
		steps, _ := j.(map[string]any)["steps"].([]any)
		for _, s := range steps {
			step, _ := s.(map[string]any)
			uses, _ := step["uses"].(string)
			with, _ := step["with"].(map[string]any)
			switch {
			case strings.HasPrefix(uses, "docker/build-push-action@"):
				pushed = with
			case strings.HasPrefix(uses, "docker/metadata-action@"):
				meta = with
			}
		}
	}
	if pushed == nil || pushed["push"] != true || pushed["target"] != nil {
		t.Fatalf("no build-push step that pushes the Dockerfile's image: %v", pushed)
	}
	args, _ := pushed["build-args"].(string)
	for _, want := range []string{"VERSION=${{ github.ref_name }}", "REVISION=${{ github.sha }}"} {
		if !strings.Contains(args, want) {
			t.Errorf("build-args %q lack %s", args, want)
		}
	}
	if meta == nil || meta["images"] != "ghcr.io/${{ github.repository_owner }}/foodpipe" {
		t.Errorf("the image is not named ghcr.io/OWNER/foodpipe, as deploy/k8s/base names it: %v", meta)
	}
}

// The workflow checks for known vulnerabilities with govulncheck, at a
// pinned version.
func TestGitHubWorkflowRunsGovulncheck(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`go run golang\.org/x/vuln/cmd/govulncheck@v\d+\.\d+\.\d+ \./\.\.\.`).Match(b) {
		t.Error("ci.yml does not run govulncheck at a pinned version on ./...")
	}
}

// The builder image is the exact Go of go.mod, not a floating minor tag that
// moves under the build.
func TestDockerfileBuilderIsGoModsGo(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ARG BUILDER_IMAGE=golang:" + string(goVersion[1]) + "-bookworm"; !strings.Contains(string(df), want) {
		t.Errorf("the Dockerfile lacks %q", want)
	}
}

// Every action a workflow uses is pinned to a commit, with the release it is
// in a comment after it (uses: actions/checkout@<40 hex> # v7.0.1): a tag can
// be moved to other code after review, a commit cannot. Actions kept in this
// repository (uses: ./path) are pinned by the commit that runs them.
func TestWorkflowActionsArePinnedToCommits(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d workflows under .github/workflows, want ci.yml and release.yml at least", len(files))
	}
	pinned := regexp.MustCompile(`^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$`)
	release := regexp.MustCompile(`^ # v\d+\.\d+\.\d+\S*$`)
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		t.Run(filepath.Base(file), func(t *testing.T) {
			uses := workflowUses(readYAML(t, rel))
			if len(uses) == 0 {
				t.Fatalf("%s uses no action", rel)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, u := range uses {
				if seen[u] || strings.HasPrefix(u, "./") {
					continue
				}
				seen[u] = true
				if !pinned.MatchString(u) {
					t.Errorf("%s: uses %s, want owner/repo@<40-hex commit> # vX.Y.Z", rel, u)
					continue
				}
				// The parser drops comments: find the lines in the file.
				lines := regexp.MustCompile(`(?m)^\s*(- )?uses: `+regexp.QuoteMeta(u)+`( .*)?$`).FindAllSubmatch(b, -1)
				if len(lines) == 0 {
					t.Errorf("%s: no line reads uses: %s (quoted?)", rel, u)
				}
				for _, line := range lines {
					if !release.Match(line[2]) {
						t.Errorf("%s: uses %s without the release it is in as a comment (# vX.Y.Z) after it", rel, u)
					}
				}
			}
		})
	}
}

// workflowUses returns every uses: of a workflow, the jobs' (reusable
// workflows) and their steps'.
func workflowUses(wf map[string]any) []string {
	var uses []string
	jobs, _ := wf["jobs"].(map[string]any)
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		if u, ok := job["uses"].(string); ok {
			uses = append(uses, u)
		}
		steps, _ := job["steps"].([]any)
		for _, s := range steps {
			step, _ := s.(map[string]any)
			if u, ok := step["uses"].(string); ok {
				uses = append(uses, u)
			}
		}
	}
	return uses
}
