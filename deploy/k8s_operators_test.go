package deploy

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// strimziReleases is testdata/strimzi-kafka-versions.yaml: the Kafka versions
// each current Strimzi release supports, copied from Strimzi's own list.
type strimziReleases struct {
	Releases []struct {
		Strimzi string `json:"strimzi"`
		Kafka   struct {
			Min string `json:"min"`
			Max string `json:"max"`
		} `json:"kafka"`
	} `json:"releases"`
}

// kafkaVersion parses a Kafka version, major.minor.patch, into numbers that
// compare in order.
func kafkaVersion(t *testing.T, v string) [3]int {
	t.Helper()
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		t.Fatalf("Kafka version %q is not major.minor.patch", v)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("Kafka version %q: %v", v, err)
		}
		n[i] = x
	}
	return n
}

func compareVersions(a, b [3]int) int { return slices.Compare(a[:], b[:]) }

// Every current Strimzi release accepts the Kafka resource's version: one
// outside a release's supported range leaves the resource NotReady, and the
// guide's `kubectl wait kafka/foodpipe` times out. The guide names the
// version and the releases.
func TestStrimziCurrentReleasesSupportTheKafkaVersion(t *testing.T) {
	var sr strimziReleases
	readStrict(t, filepath.Join("deploy", "testdata", "strimzi-kafka-versions.yaml"), &sr)
	if len(sr.Releases) == 0 {
		t.Fatal("no Strimzi release in testdata/strimzi-kafka-versions.yaml")
	}
	m := loadManifests(t)
	if len(m.kafkas) == 0 {
		t.Fatal("no Kafka resource")
	}
	guide, err := os.ReadFile(filepath.Join(root, "docs", "KUBERNETES.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range m.kafkas {
		v := kafkaVersion(t, k.Spec.Kafka.Version)
		for _, r := range sr.Releases {
			lo, hi := kafkaVersion(t, r.Kafka.Min), kafkaVersion(t, r.Kafka.Max)
			if compareVersions(v, lo) < 0 || compareVersions(v, hi) > 0 {
				t.Errorf("Kafka %s runs Kafka %s, which Strimzi %s refuses (it supports %s to %s)",
					name, k.Spec.Kafka.Version, r.Strimzi, r.Kafka.Min, r.Kafka.Max)
			}
			if !strings.Contains(string(guide), "Strimzi "+r.Strimzi) {
				t.Errorf("docs/KUBERNETES.md does not name Strimzi %s, a release the Kafka resource is checked against", r.Strimzi)
			}
		}
		if !strings.Contains(string(guide), "Kafka "+k.Spec.Kafka.Version) {
			t.Errorf("docs/KUBERNETES.md does not name Kafka %s, the version of the Kafka resource", k.Spec.Kafka.Version)
		}
	}
}

// kubeDNSSearch is the search list the kubelet writes into a pod's
// resolv.conf on a cluster whose domain is cluster.local, with ndots:5.
func kubeDNSSearch(namespace string) []string {
	return []string{namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local"}
}

// resolveInCluster returns the service a name resolves to from a pod in
// namespace, as the cluster's DNS would: a name with fewer than 5 dots is
// tried with each search domain first, then as it is. Services are given as
// "name.namespace"; the answer is "" when none matches.
func resolveInCluster(name, namespace string, services []string) string {
	var tries []string
	if strings.Count(name, ".") < 5 {
		for _, s := range kubeDNSSearch(namespace) {
			tries = append(tries, name+"."+s)
		}
	}
	tries = append(tries, name)
	for _, fqdn := range tries {
		for _, svc := range services {
			if fqdn == svc+".svc.cluster.local" {
				return svc
			}
		}
	}
	return ""
}

func TestResolveInClusterFollowsThePodsSearchList(t *testing.T) {
	services := []string{"foodpipe-kafka-bootstrap.foodpipe"}
	for _, c := range []struct {
		name, from, want string
	}{
		{"foodpipe-kafka-bootstrap", "foodpipe", "foodpipe-kafka-bootstrap.foodpipe"},
		{"foodpipe-kafka-bootstrap", "keda", ""},
		{"foodpipe-kafka-bootstrap.foodpipe", "keda", "foodpipe-kafka-bootstrap.foodpipe"},
		{"foodpipe-kafka-bootstrap.foodpipe.svc", "keda", "foodpipe-kafka-bootstrap.foodpipe"},
		{"foodpipe-kafka-bootstrap.foodpipe.svc.cluster.local", "keda", "foodpipe-kafka-bootstrap.foodpipe"},
		{"foodpipe-kafka-bootstrap.other.svc", "keda", ""},
	} {
		t.Run(fmt.Sprintf("%s from %s", c.name, c.from), func(t *testing.T) {
			if got := resolveInCluster(c.name, c.from, services); got != c.want {
				t.Errorf("resolves to %q, want %q", got, c.want)
			}
		})
	}
}

// kedaNamespace is where KEDA's install (Helm chart and release YAML) runs
// the operator, whose scalers connect to the brokers.
const kedaNamespace = "keda"

// KEDA's kafka scaler connects from the keda-operator pod in namespace keda,
// not from the consumers' namespace: the bootstrap address must name the
// Strimzi bootstrap service in a way that resolves from there, on the port
// of the listener the ConfigMap's brokers use.
func TestKEDATriggerAddressResolvesFromKEDAsNamespace(t *testing.T) {
	m := build(t, filepath.Join("k8s", "keda"))
	strimzi := build(t, filepath.Join("k8s", "strimzi"))
	var services []string
	for name := range strimzi.kafkas {
		services = append(services, name+"-kafka-bootstrap.foodpipe")
	}
	so := m.scaledObjects["foodpipe-consumer"]
	if so == nil || len(so.Spec.Triggers) != 1 {
		t.Fatal("no ScaledObject foodpipe-consumer with one trigger")
	}
	brokers := m.configMaps["foodpipe"].Data["KAFKA_BROKERS"]
	_, brokerPort, err := net.SplitHostPort(brokers)
	if err != nil {
		t.Fatalf("the ConfigMap's KAFKA_BROKERS %q: %v", brokers, err)
	}
	for _, addr := range strings.Split(so.Spec.Triggers[0].Metadata["bootstrapServers"], ",") {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("bootstrapServers %q: %v", addr, err)
			continue
		}
		if got := resolveInCluster(host, kedaNamespace, services); got == "" {
			t.Errorf("bootstrapServers %s does not resolve from namespace %s (services %v)", addr, kedaNamespace, services)
		}
		if got, want := resolveInCluster(host, "foodpipe", services), resolveInCluster(strings.Split(brokers, ":")[0], "foodpipe", services); got != want {
			t.Errorf("bootstrapServers %s is service %q; the consumers use %q", addr, got, want)
		}
		if port != brokerPort {
			t.Errorf("bootstrapServers %s: port %s, the consumers use %s", addr, port, brokerPort)
		}
	}
}

// Deleting a directory (`kubectl delete -k`) deletes what it lists: were the
// Namespace in several, `kubectl delete -k deploy/k8s/monitoring` would
// delete the whole namespace, Kafka's and PostgreSQL's volumes with it. Only
// namespace/ may own it.
func TestOnlyOneOverlayOwnsTheNamespace(t *testing.T) {
	var owners []string
	for _, dir := range overlays(t) {
		if len(build(t, dir).namespaces) > 0 {
			owners = append(owners, filepath.Base(dir))
		}
	}
	if !slices.Equal(owners, []string{"namespace"}) {
		t.Errorf("the Namespace is in the output of %v; want namespace/ alone", owners)
	}
}

// Every workload runs the one foodpipe image, which kustomize names with a
// registry: a bare name would be pulled from Docker Hub, where foodpipe is
// not published. The args say what each runs.
func TestEveryWorkloadRunsTheOneImageFromARegistry(t *testing.T) {
	m := build(t, filepath.Join("k8s", "base"))
	args := map[string]string{}
	specs := map[string]corev1.PodSpec{}
	for n, d := range m.deployments {
		specs[n] = d.Spec.Template.Spec
	}
	for n, j := range m.jobs {
		specs[n] = j.Spec.Template.Spec
	}
	for n, spec := range specs {
		c := container(t, spec)
		args[n] = strings.Join(c.Args, " ")
		repo, _, _ := strings.Cut(c.Image, ":")
		host, path, ok := strings.Cut(repo, "/")
		if !ok || !strings.Contains(host, ".") || path != "OWNER/foodpipe" {
			t.Errorf("%s runs image %q, want the published one, REGISTRY/OWNER/foodpipe", n, c.Image)
		}
	}
	want := map[string]string{
		"foodpipe-producer": "produce", "foodpipe-consumer": "consume", "foodpipe-analytics": "analytics",
		"foodpipe-exporter": "exporter",
		"foodpipe-migrate":  "migrate up", "foodpipe-topic-create": "topic create",
	}
	if !maps.Equal(args, want) {
		t.Errorf("workloads run %v, want %v", args, want)
	}
}
