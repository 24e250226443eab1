package deploy

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"foodpipe/deploy/monitoring"
	"foodpipe/internal/config"
)

// The custom resources (Kustomize, KEDA, Strimzi, CloudNativePG) are decoded
// strictly into the minimal structs below, which hold just the fields the
// manifests use: their Go API modules would bring in controller-runtime and
// more (Strimzi has none), and a field the struct does not know fails the test.

type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Namespace       string   `json:"namespace,omitempty"`
	Resources       []string `json:"resources"`
	Labels          []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels,omitempty"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
	Patches []struct {
		Target struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"target"`
		Patch string `json:"patch"`
	} `json:"patches,omitempty"`
}

type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int32 `json:"minReplicaCount"`
		MaxReplicaCount int32 `json:"maxReplicaCount"`
		PollingInterval int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  int32 `json:"cooldownPeriod,omitempty"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

type strimziKafka struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Kafka struct {
			Version   string            `json:"version"`
			Listeners []strimziListener `json:"listeners"`
			Config    map[string]any    `json:"config"`
		} `json:"kafka"`
		EntityOperator struct {
			TopicOperator *struct{} `json:"topicOperator,omitempty"`
			UserOperator  *struct{} `json:"userOperator,omitempty"`
		} `json:"entityOperator"`
	} `json:"spec"`
}

type strimziListener struct {
	Name           string `json:"name"`
	Port           int32  `json:"port"`
	Type           string `json:"type"`
	TLS            bool   `json:"tls"`
	Authentication *struct {
		Type string `json:"type"`
	} `json:"authentication,omitempty"`
}

type strimziNodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Replicas int32    `json:"replicas"`
		Roles    []string `json:"roles"`
		Storage  struct {
			Type    string `json:"type"`
			Volumes []struct {
				ID            int    `json:"id"`
				Type          string `json:"type"`
				Size          string `json:"size"`
				DeleteClaim   bool   `json:"deleteClaim"`
				KraftMetadata string `json:"kraftMetadata,omitempty"`
			} `json:"volumes"`
		} `json:"storage"`
		Resources  corev1.ResourceRequirements `json:"resources"`
		JVMOptions map[string]string           `json:"jvmOptions,omitempty"`
	} `json:"spec"`
}

type strimziTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Partitions int32          `json:"partitions"`
		Replicas   int32          `json:"replicas"`
		Config     map[string]any `json:"config"`
	} `json:"spec"`
}

// podMonitor and prometheusRule are the Prometheus Operator's
// monitoring.coreos.com/v1 resources of the monitoring overlay.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel            string               `json:"jobLabel"`
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              monitoring.RuleFile `json:"spec"`
}

type cnpgCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Instances int    `json:"instances"`
		ImageName string `json:"imageName"`
		Bootstrap struct {
			Initdb struct {
				Database string `json:"database"`
				Owner    string `json:"owner"`
			} `json:"initdb"`
		} `json:"bootstrap"`
		PostgreSQL struct {
			Parameters map[string]string `json:"parameters"`
		} `json:"postgresql"`
		Storage struct {
			Size string `json:"size"`
		} `json:"storage"`
		Resources corev1.ResourceRequirements `json:"resources"`
	} `json:"spec"`
}

// manifests holds every object under k8s/, decoded strictly, by kind.
type manifests struct {
	deployments    map[string]*appsv1.Deployment
	jobs           map[string]*batchv1.Job
	pdbs           map[string]*policyv1.PodDisruptionBudget
	configMaps     map[string]*corev1.ConfigMap
	secrets        map[string]*corev1.Secret
	namespaces     map[string]*corev1.Namespace
	kustomizations map[string]*kustomization // by directory
	scaledObjects  map[string]*scaledObject
	kafkas         map[string]*strimziKafka
	nodePools      map[string]*strimziNodePool
	topics         map[string]*strimziTopic
	clusters       map[string]*cnpgCluster
	podMonitors    map[string]*podMonitor
	rules          map[string]*prometheusRule
	files          map[string]bool // every manifest file, relative to k8s/
}

func newManifests() *manifests {
	return &manifests{
		deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, namespaces: map[string]*corev1.Namespace{},
		kustomizations: map[string]*kustomization{}, scaledObjects: map[string]*scaledObject{},
		kafkas: map[string]*strimziKafka{}, nodePools: map[string]*strimziNodePool{},
		topics: map[string]*strimziTopic{}, clusters: map[string]*cnpgCluster{}, files: map[string]bool{},
		podMonitors: map[string]*podMonitor{}, rules: map[string]*prometheusRule{},
	}
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := newManifests()
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel("k8s", path)
		m.files[filepath.ToSlash(rel)] = true
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			m.decode(t, rel+"#"+strconv.Itoa(i), []byte(doc))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// keep decodes a document strictly into a new T and files it under its name.
func keep[T any, P interface {
	*T
	GetName() string
}](strict func(any) bool, into map[string]*T) {
	o := P(new(T))
	if strict(o) {
		into[o.GetName()] = o
	}
}

// decode decodes one document strictly into the type its apiVersion and kind name.
func (m *manifests) decode(t *testing.T, where string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	strict := func(v any) bool {
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			t.Errorf("%s (%s %s): %v", where, tm.APIVersion, tm.Kind, err)
			return false
		}
		return true
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		keep(strict, m.deployments)
	case "batch/v1 Job":
		keep(strict, m.jobs)
	case "policy/v1 PodDisruptionBudget":
		keep(strict, m.pdbs)
	case "v1 ConfigMap":
		keep(strict, m.configMaps)
	case "v1 Secret":
		keep(strict, m.secrets)
	case "v1 Namespace":
		keep(strict, m.namespaces)
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		var o kustomization
		if strict(&o) {
			m.kustomizations[filepath.ToSlash(filepath.Dir(strings.SplitN(where, "#", 2)[0]))] = &o
		}
	case "keda.sh/v1alpha1 ScaledObject":
		keep(strict, m.scaledObjects)
	// Strimzi's v1 API only: Strimzi 1.0 serves no other, so a v1beta2
	// resource falls through to the error below.
	case "kafka.strimzi.io/v1 Kafka":
		keep(strict, m.kafkas)
	case "kafka.strimzi.io/v1 KafkaNodePool":
		keep(strict, m.nodePools)
	case "kafka.strimzi.io/v1 KafkaTopic":
		keep(strict, m.topics)
	case "monitoring.coreos.com/v1 PodMonitor":
		keep(strict, m.podMonitors)
	case "monitoring.coreos.com/v1 PrometheusRule":
		keep(strict, m.rules)
	case "postgresql.cnpg.io/v1 Cluster":
		keep(strict, m.clusters)
	default:
		t.Errorf("%s: no test knows %q %q", where, tm.APIVersion, tm.Kind)
	}
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	for what, n := range map[string]int{
		"Deployment": len(m.deployments), "Job": len(m.jobs), "PodDisruptionBudget": len(m.pdbs),
		"ConfigMap": len(m.configMaps), "Secret": len(m.secrets), "Kustomization": len(m.kustomizations),
		"ScaledObject": len(m.scaledObjects), "Kafka": len(m.kafkas), "KafkaNodePool": len(m.nodePools),
		"KafkaTopic": len(m.topics), "Cluster": len(m.clusters), "Namespace": len(m.namespaces),
		"PodMonitor": len(m.podMonitors), "PrometheusRule": len(m.rules),
	} {
		if n == 0 {
			t.Errorf("no %s found under deploy/k8s", what)
		}
	}
}

func TestKustomizationsListFilesThatExist(t *testing.T) {
	m := loadManifests(t)
	for dir, k := range m.kustomizations {
		if k.Namespace != "foodpipe" {
			t.Errorf("%s: namespace %q", dir, k.Namespace)
		}
		for _, r := range k.Resources {
			p := filepath.Join("k8s", dir, r)
			st, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s lists %s: %v", dir, r, err)
				continue
			}
			if st.IsDir() {
				if _, ok := m.kustomizations[filepath.ToSlash(filepath.Clean(filepath.Join(dir, r)))]; !ok {
					t.Errorf("%s lists the directory %s, which has no kustomization.yaml", dir, r)
				}
			}
		}
		for _, p := range k.Patches {
			if _, ok := m.deployments[p.Target.Name]; !ok {
				t.Errorf("%s patches %s %s, which does not exist", dir, p.Target.Kind, p.Target.Name)
			}
		}
	}
	base := m.kustomizations["base"]
	if base == nil {
		t.Fatal("no base kustomization")
	}
	// Every manifest of base is applied, except the Secret example.
	for f := range m.files {
		dir, name := filepath.Split(f)
		if dir == "base/" && name != "kustomization.yaml" && name != "secret.example.yaml" && !slices.Contains(base.Resources, name) {
			t.Errorf("base/kustomization.yaml does not list %s", name)
		}
	}
	if slices.Contains(base.Resources, "secret.example.yaml") {
		t.Error("the example Secret must not be applied")
	}
}

func container(t *testing.T, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	return spec.Containers[0]
}

func TestConsumerDeployment(t *testing.T) {
	m := loadManifests(t)
	d := m.deployments["foodpipe-consumer"]
	if d == nil {
		t.Fatal("no foodpipe-consumer Deployment")
	}
	c := container(t, d.Spec.Template.Spec)
	if c.Image != "foodpipe" || strings.Join(c.Args, " ") != "consume" {
		t.Errorf("image %q args %v, want foodpipe consume", c.Image, c.Args)
	}
	port := func(p corev1.HTTPGetAction) int32 {
		if p.Port.IntVal != 0 {
			return p.Port.IntVal
		}
		for _, cp := range c.Ports {
			if cp.Name == p.Port.StrVal {
				return cp.ContainerPort
			}
		}
		return 0
	}
	for _, probe := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path || port(*probe.p.HTTPGet) != 9100 {
			t.Errorf("%s probe %+v, want GET %s on 9100", probe.name, probe.p, probe.path)
		}
	}
	want := "128Mi"
	if r := c.Resources.Requests[corev1.ResourceMemory]; r.String() != want {
		t.Errorf("memory request %s, want %s", r.String(), want)
	}
	if l := c.Resources.Limits[corev1.ResourceMemory]; l.String() != want {
		t.Errorf("memory limit %s, want %s", l.String(), want)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 1 || *d.Spec.Replicas > 3 {
		t.Errorf("replicas %v, want 1 to 3 (the partitions)", d.Spec.Replicas)
	}

	pdb := m.pdbs["foodpipe-consumer"]
	if pdb == nil || pdb.Spec.Selector == nil {
		t.Fatal("no PodDisruptionBudget for the consumers")
	}
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the PDB selects %s=%s, which the consumer pods do not carry", k, v)
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the Deployment selects %s=%s, which its pods do not carry", k, v)
		}
	}
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		t.Error("the PDB sets neither minAvailable nor maxUnavailable")
	}
}

func TestWorkloadsRunFoodpipeWithItsOwnVariables(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["foodpipe"]
	secret := m.secrets["foodpipe"]
	if cm == nil || secret == nil {
		t.Fatal("no foodpipe ConfigMap or example Secret")
	}
	type workload struct {
		name string
		spec corev1.PodSpec
		args string
	}
	var ws []workload
	for n, d := range m.deployments {
		ws = append(ws, workload{n, d.Spec.Template.Spec, ""})
	}
	for n, j := range m.jobs {
		ws = append(ws, workload{n, j.Spec.Template.Spec, ""})
	}
	uid, gid := imageUser(t)
	args := map[string]string{}
	for _, w := range ws {
		c := container(t, w.spec)
		args[w.name] = strings.Join(c.Args, " ")
		env := map[string]string{}
		for _, from := range c.EnvFrom {
			switch {
			case from.ConfigMapRef != nil && from.ConfigMapRef.Name == cm.Name:
				for k, v := range cm.Data {
					env[k] = v
				}
			case from.SecretRef != nil && from.SecretRef.Name == secret.Name:
				for k, v := range secret.StringData {
					env[k] = v
				}
			default:
				t.Errorf("%s reads variables from an unknown source %+v", w.name, from)
			}
		}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		checkFoodpipeEnv(t, w.name, env)
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: the root filesystem is writable", w.name)
		}
		sc := w.spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s may run as root", w.name)
			continue
		}
		// runAsNonRoot with an image whose USER is a name makes the kubelet
		// refuse the container ("cannot verify user is non-root"): the pod
		// must give the user by number, the image's.
		if sc.RunAsUser == nil || sc.RunAsGroup == nil || *sc.RunAsUser != uid || *sc.RunAsGroup != gid {
			t.Errorf("%s runs as %v:%v, want the image's user %d:%d by number", w.name, ptrVal(sc.RunAsUser), ptrVal(sc.RunAsGroup), uid, gid)
		}
	}
	if args["foodpipe-migrate"] != "migrate up" || args["foodpipe-topic-create"] != "topic create" {
		t.Errorf("job args: %v", args)
	}
	if _, ok := m.deployments["foodpipe-producer"]; !ok {
		t.Error("no producer Deployment")
	}
}

// The topic, the KEDA trigger and the ConfigMap agree: 3 partitions, 7 days,
// the same group and topic, and no more consumers than partitions.
func TestTopicScalingAndConfigAgree(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["foodpipe"].Data
	c, err := config.Load(func(k string) (string, bool) { v, ok := cm[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	topic := m.topics[c.Topic]
	if topic == nil {
		t.Fatalf("no KafkaTopic %s", c.Topic)
	}
	if topic.Spec.Partitions != 3 || topic.Spec.Partitions != c.Partitions || topic.Spec.Replicas != int32(c.ReplicationFactor) {
		t.Errorf("KafkaTopic partitions %d replicas %d; ConfigMap %d and %d", topic.Spec.Partitions, topic.Spec.Replicas, c.Partitions, c.ReplicationFactor)
	}
	if ms, _ := topic.Spec.Config["retention.ms"].(float64); time.Duration(ms)*time.Millisecond != c.Retention || c.Retention != 7*24*time.Hour {
		t.Errorf("KafkaTopic retention.ms %v, ConfigMap retention %v; want 7 days", topic.Spec.Config["retention.ms"], c.Retention)
	}
	if m.topics[c.DLQTopic] == nil {
		t.Errorf("no KafkaTopic %s", c.DLQTopic)
	}
	if topic.Labels["strimzi.io/cluster"] == "" || m.kafkas[topic.Labels["strimzi.io/cluster"]] == nil {
		t.Errorf("KafkaTopic names cluster %q, which is not defined", topic.Labels["strimzi.io/cluster"])
	}
	for name, k := range m.kafkas {
		// Strimzi 0.46 and later run KRaft with node pools only and ignore
		// the annotations that used to turn them on; leaving them in would
		// suggest they still matter.
		for _, a := range []string{"strimzi.io/kraft", "strimzi.io/node-pools"} {
			if _, ok := k.Annotations[a]; ok {
				t.Errorf("Kafka %s carries the annotation %s, which Strimzi no longer reads", name, a)
			}
		}
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.nodePools)), func(p *strimziNodePool) bool {
			return p.Labels["strimzi.io/cluster"] == name
		}) {
			t.Errorf("Kafka %s has no KafkaNodePool: under KRaft its nodes come only from node pools", name)
		}
		if !strings.HasPrefix(c.Brokers[0], name+"-kafka-bootstrap:") {
			t.Errorf("the ConfigMap's brokers %v are not Kafka %s's bootstrap service", c.Brokers, name)
		}
		if !slices.ContainsFunc(k.Spec.Kafka.Listeners, func(l strimziListener) bool {
			return c.Brokers[0] == name+"-kafka-bootstrap:"+strconv.Itoa(int(l.Port)) && !l.TLS && l.Authentication == nil
		}) {
			t.Errorf("Kafka %s has no plaintext listener on the ConfigMap's port", name)
		}
	}
	for _, p := range m.nodePools {
		if !slices.Contains(p.Spec.Roles, "controller") || !slices.Contains(p.Spec.Roles, "broker") {
			t.Errorf("node pool %s roles %v", p.Name, p.Spec.Roles)
		}
	}

	so := m.scaledObjects["foodpipe-consumer"]
	if so == nil {
		t.Fatal("no ScaledObject for the consumers")
	}
	if _, ok := m.deployments[so.Spec.ScaleTargetRef.Name]; !ok || so.Spec.ScaleTargetRef.Name != "foodpipe-consumer" {
		t.Errorf("the ScaledObject scales %q", so.Spec.ScaleTargetRef.Name)
	}
	if so.Spec.MaxReplicaCount != topic.Spec.Partitions || so.Spec.MinReplicaCount < 1 {
		t.Errorf("ScaledObject replicas %d..%d, want 1..%d (one consumer per partition at most)", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount, topic.Spec.Partitions)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "kafka" {
		t.Fatalf("triggers %+v, want one of type kafka", so.Spec.Triggers)
	}
	md := so.Spec.Triggers[0].Metadata
	// The brokers are the same service, named from KEDA's namespace
	// (TestKEDATriggerAddressResolvesFromKEDAsNamespace).
	if md["consumerGroup"] != c.Group || md["topic"] != c.Topic {
		t.Errorf("trigger %v does not match the ConfigMap (group %s, topic %s)", md, c.Group, c.Topic)
	}
	if n, err := strconv.Atoi(md["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("lagThreshold %q", md["lagThreshold"])
	}

	// An exact PostgreSQL 17 minor of a named flavour and Debian release: the
	// bare major and major.minor tags are rolling tags CloudNativePG deprecated.
	pinned := regexp.MustCompile(`^ghcr\.io/cloudnative-pg/postgresql:17\.[0-9]+-(minimal|standard|system)-(bookworm|trixie)$`)
	for name, cl := range m.clusters {
		if !pinned.MatchString(cl.Spec.ImageName) || cl.Spec.Bootstrap.Initdb.Database != "foodpipe" {
			t.Errorf("CNPG cluster %s: image %s database %s", name, cl.Spec.ImageName, cl.Spec.Bootstrap.Initdb.Database)
		}
		if !strings.Contains(m.secrets["foodpipe"].StringData["DATABASE_URL"], name+"-rw:5432/foodpipe") {
			t.Errorf("the example Secret's DATABASE_URL does not point at CNPG cluster %s's read-write service", name)
		}
	}
}

// Every document parses as YAML at all (a tab or bad indent anywhere fails).
func TestKubernetesFilesAreYAML(t *testing.T) {
	m := loadManifests(t)
	for f := range m.files {
		b, err := os.ReadFile(filepath.Join("k8s", f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("\t")) {
			t.Errorf("%s contains a tab", f)
		}
	}
}

func ptrVal[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// distrolessNonroot is the uid and gid of user nonroot in the distroless
// images the Dockerfile's runtime stage starts from.
const distrolessNonroot = 65532

// imageUser reads the USER of the Dockerfile's runtime stages as numbers,
// with distroless's nonroot taken as 65532.
func imageUser(t *testing.T) (uid, gid int64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER\s+(\S+)\s*$`).FindAllStringSubmatch(string(b), -1)
	// The foodpipe stage's and the mail target's: both run as one user.
	if len(m) == 0 || slices.ContainsFunc(m, func(u []string) bool { return u[1] != m[0][1] }) {
		t.Fatalf("the Dockerfile's USER lines %v, want one user for every stage that sets one", m)
	}
	num := func(s string) int64 {
		if s == "nonroot" {
			return distrolessNonroot
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("Dockerfile USER %s: %q is neither nonroot nor a number", m[0][1], s)
		}
		return n
	}
	user, group, ok := strings.Cut(m[0][1], ":")
	if !ok {
		group = user
	}
	uid, gid = num(user), num(group)
	if uid == 0 {
		t.Fatalf("the Dockerfile runs as root (USER %s)", m[0][1])
	}
	return uid, gid
}

// overlays lists the directories under k8s/ that hold a kustomization.
func overlays(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// build runs what `kubectl apply -k dir` runs first: Kustomize (the API of
// kustomize v5.8.2) on the directory, and decodes every object it outputs
// strictly, as loadManifests does for the files.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := newManifests()
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		m.decode(t, dir+" "+r.CurId().String(), b)
		// Everything lands in namespace foodpipe, which namespace/ alone
		// creates (TestOnlyOneOverlayOwnsTheNamespace).
		if r.GetKind() != "Namespace" && r.GetNamespace() != "foodpipe" {
			t.Errorf("%s: %s is in namespace %q, want foodpipe", dir, r.CurId(), r.GetNamespace())
		}
	}
	return m
}

func TestKustomizeBuildsEveryOverlay(t *testing.T) {
	dirs := overlays(t)
	for _, want := range []string{"base", "keda", "strimzi", "cnpg", "monitoring", "namespace"} {
		if !slices.Contains(dirs, filepath.Join("k8s", want)) {
			t.Errorf("no k8s/%s kustomization", want)
		}
	}
	uid, gid := imageUser(t)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := build(t, dir)
			specs := map[string]corev1.PodSpec{}
			for n, d := range m.deployments {
				specs[n] = d.Spec.Template.Spec
			}
			for n, j := range m.jobs {
				specs[n] = j.Spec.Template.Spec
			}
			for n, s := range specs {
				sc := s.SecurityContext
				if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid || sc.RunAsGroup == nil || *sc.RunAsGroup != gid {
					t.Errorf("%s: pod %s does not run as %d:%d", dir, n, uid, gid)
				}
			}
		})
	}
}

// A node drain evicts a consumer only while the PodDisruptionBudget allows
// one disruption. At the fewest replicas an overlay can run (KEDA's
// minReplicaCount, or the fixed count), it must allow one, or the drain hangs.
func TestConsumerPDBLetsNodesDrain(t *testing.T) {
	for _, dir := range []string{"base", "keda"} {
		m := build(t, filepath.Join("k8s", dir))
		d, pdb := m.deployments["foodpipe-consumer"], m.pdbs["foodpipe-consumer"]
		if d == nil || pdb == nil {
			t.Fatalf("%s: no consumer Deployment or PodDisruptionBudget", dir)
		}
		fewest := int32(1)
		if d.Spec.Replicas != nil {
			fewest = *d.Spec.Replicas
		}
		if so := m.scaledObjects["foodpipe-consumer"]; so != nil {
			fewest = so.Spec.MinReplicaCount
		} else if d.Spec.Replicas == nil {
			t.Errorf("%s: the consumer has neither replicas nor a ScaledObject", dir)
		}
		allowed := fewest
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			allowed = min(fewest, int32(pdb.Spec.MaxUnavailable.IntValue()))
		case pdb.Spec.MinAvailable != nil:
			allowed = fewest - int32(pdb.Spec.MinAvailable.IntValue())
		}
		if allowed < 1 {
			t.Errorf("%s: at %d consumer replicas the PodDisruptionBudget allows %d evictions: no node with a consumer can drain", dir, fewest, allowed)
		}
		// A consumer whose database is down fails /readyz; under the default
		// policy that unready pod counts against the budget and the drain
		// waits for the database.
		if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
			t.Errorf("%s: unhealthyPodEvictionPolicy %v, want AlwaysAllow: an unready consumer would block the drain", dir, ptrVal(p))
		}
	}
}

// The monitoring overlay scrapes the pods that serve metrics under the job
// names the alerts select on, and carries the alerts of
// deploy/monitoring/alerts.yml unchanged.
func TestMonitoringOverlay(t *testing.T) {
	m := build(t, filepath.Join("k8s", "monitoring"))
	pm := m.podMonitors["foodpipe"]
	if pm == nil {
		t.Fatal("no PodMonitor foodpipe")
	}
	base := loadManifests(t)
	for _, name := range []string{"foodpipe-producer", "foodpipe-consumer", "foodpipe-analytics", "foodpipe-exporter"} {
		d := base.deployments[name]
		if d == nil {
			t.Fatalf("no Deployment %s", name)
		}
		pod := d.Spec.Template
		for k, v := range pm.Spec.Selector.MatchLabels {
			if pod.Labels[k] != v {
				t.Errorf("the PodMonitor selects %s=%s, which %s's pods lack", k, v, name)
			}
		}
		job := pod.Labels[pm.Spec.JobLabel]
		if job != strings.TrimPrefix(name, "foodpipe-") {
			t.Errorf("%s's pods get job %q from label %q, want %q as the alerts and dashboard expect", name, job, pm.Spec.JobLabel, strings.TrimPrefix(name, "foodpipe-"))
		}
		c := container(t, pod.Spec)
		if len(pm.Spec.PodMetricsEndpoints) != 1 || !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
			return p.Name == pm.Spec.PodMetricsEndpoints[0].Port
		}) || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
			t.Errorf("the PodMonitor scrapes %+v; %s's ports are %+v", pm.Spec.PodMetricsEndpoints, name, c.Ports)
		}
	}
	rule := m.rules["foodpipe"]
	if rule == nil {
		t.Fatal("no PrometheusRule foodpipe")
	}
	want, err := monitoring.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule.Spec, *want) {
		t.Error("the PrometheusRule's groups differ from deploy/monitoring/alerts.yml: copy the rules over")
	}
	// Grafana's sidecar loads the dashboard from a ConfigMap it finds by label.
	cm := m.configMaps["foodpipe-dashboard"]
	if cm == nil || cm.Labels["grafana_dashboard"] != "1" {
		t.Fatalf("no ConfigMap foodpipe-dashboard labelled grafana_dashboard: \"1\" for Grafana's sidecar: %+v", cm)
	}
	dashboard, err := os.ReadFile(filepath.Join("monitoring", "grafana", "dashboards", "foodpipe.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["foodpipe.json"] != string(dashboard) {
		t.Error("the ConfigMap's foodpipe.json differs from deploy/monitoring/grafana/dashboards/foodpipe.json: copy it over")
	}
}
