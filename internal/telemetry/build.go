package telemetry

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision are stamped at link time by the Makefile and the
// Dockerfile (-ldflags "-X foodpipe/internal/telemetry.version=..."): an image
// is built from a context without .git, where the Go toolchain cannot read
// the revision itself.
var (
	version  string
	revision string
)

// BuildInfo says which foodpipe a binary is: what `foodpipe version` prints
// and what foodpipe_build_info labels.
type BuildInfo struct {
	Version   string `json:"version"`   // a release tag (v1.2.0), git describe's output, or "devel"
	Revision  string `json:"revision"`  // the commit, or "unknown"
	Modified  bool   `json:"modified"`  // built from a tree with uncommitted changes, where the toolchain knows it
	GoVersion string `json:"goversion"` // the Go that built it
}

// Build returns the running binary's BuildInfo: the stamped version and
// revision where the build stamped them, else what the Go toolchain recorded
// (the module version of `go install foodpipe@v1.2.0`, vcs.revision of a
// build in a git checkout).
func Build() BuildInfo {
	b := BuildInfo{Version: version, Revision: revision}
	info, ok := debug.ReadBuildInfo()
	if ok {
		b.GoVersion = info.GoVersion
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Revision == "" {
					b.Revision = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return b
}

// newBuildInfo is foodpipe_build_info: always 1, with the build's labels, so
// that a query can join any series on the version that produced it
// (`* on (instance) group_left (version) foodpipe_build_info`).
func newBuildInfo(b BuildInfo) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "foodpipe_build_info",
		Help:        "Always 1; the labels say which foodpipe this process runs: version, revision and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion}})
	g.Set(1)
	return g
}
