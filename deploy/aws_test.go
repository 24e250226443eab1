package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/joho/godotenv"

	"foodpipe/internal/config"
	"foodpipe/internal/dlq"
)

// Containers on Docker's bridge are one network hop further from the
// instance metadata service than the host: IMDSv2 answers them only with a
// PUT response hop limit of 2, so MSK IAM from a container needs it set, and
// the guide must say how rather than "nothing to configure".
func TestAWSGuideSetsTheIMDSHopLimitForContainers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("aws", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	guide := string(b)
	if strings.Contains(guide, "nothing to configure") {
		t.Error("the AWS guide says the instance role needs nothing to configure; containers on the bridge need IMDSv2's hop limit of 2")
	}
	for _, want := range []string{
		"HttpPutResponseHopLimit=2",        // at launch: aws ec2 run-instances --metadata-options
		"modify-instance-metadata-options", // on a running instance
		"--http-put-response-hop-limit 2",
	} {
		if !strings.Contains(guide, want) {
			t.Errorf("the AWS guide lacks %q", want)
		}
	}
}

func TestComposeAWSOverrideLogsEveryServiceToCloudWatch(t *testing.T) {
	p := loadCompose(t, "docker-compose.yml", "docker-compose.small.yml", "docker-compose.aws.yml")
	checkPipeline(t, p)
	for name, s := range p.Services {
		if name == "kafka-ui" {
			continue
		}
		if s.Logging == nil || s.Logging.Driver != "awslogs" || s.Logging.Options["awslogs-group"] != "foodpipe" || s.Logging.Options["awslogs-region"] == "" {
			t.Errorf("%s does not log to CloudWatch: %+v", name, s.Logging)
		}
		// Blocking mode (the default) stalls a container's writes to its
		// output while CloudWatch is slow or unreachable, and the consumer
		// with them.
		if s.Logging != nil && (s.Logging.Options["mode"] != "non-blocking" || s.Logging.Options["max-buffer-size"] == "") {
			t.Errorf("%s logs in blocking mode or without a buffer size: %v", name, s.Logging.Options)
		}
	}
}

// user-data.sh is valid bash and starts the compose files that exist.
func TestUserDataScript(t *testing.T) {
	path := filepath.Join("aws", "user-data.sh")
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", path, err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := regexp.MustCompile(`-f (\S+\.yml)`).FindAllStringSubmatch(string(b), -1)
	if len(files) != 3 {
		t.Fatalf("user-data.sh names %d compose files, want the stack, the small-box profile and the AWS logging", len(files))
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(root, f[1])); err != nil {
			t.Errorf("user-data.sh starts %s: %v", f[1], err)
		}
	}
	for _, want := range []string{"docker-compose-plugin", "git clone", "docker-compose.small.yml", "fetch_verified"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("user-data.sh lacks %q", want)
		}
	}
}

// The MSK and RDS example in the AWS guide is a configuration foodpipe accepts.
func TestAWSGuideManagedEnvExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("aws", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)managed\.env <<'ENV'\n(.*?)\nENV\n`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the AWS guide has no managed.env example")
	}
	vals, err := godotenv.Unmarshal(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if vals["KAFKA_SASL_MECHANISM"] != "AWS_MSK_IAM" || !strings.Contains(vals["DATABASE_URL"], "sslmode=verify-full") {
		t.Errorf("the example is not MSK IAM with verified TLS to RDS: %v", vals)
	}
	checkFoodpipeEnv(t, "deploy/aws/README.md managed.env", vals)
}

// user-data.sh downloads nothing unpinned: no "latest", no release looked up
// at boot, and every binary it fetches goes through fetch_verified.
func TestUserDataPinsWhatItDownloads(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("aws", "user-data.sh"))
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	for _, bad := range []string{"/latest/download", "api.github.com", "releases/latest"} {
		if strings.Contains(script, bad) {
			t.Errorf("user-data.sh downloads through %q, which changes under it", bad)
		}
	}
	for _, v := range []string{"COMPOSE_VERSION", "BUILDX_VERSION"} {
		if !regexp.MustCompile(v + `="\$\{` + v + `:-v[0-9]+\.[0-9]+\.[0-9]+\}"`).MatchString(script) {
			t.Errorf("user-data.sh does not pin %s to an exact version", v)
		}
	}
	// Every download of a release binary is one fetch_verified call.
	downloads := regexp.MustCompile(`https://github\.com/docker/[a-z]+/releases/download/\S+`).FindAllString(script, -1)
	calls := regexp.MustCompile(`(?m)^\s*fetch_verified "https://github`).FindAllString(script, -1)
	if len(downloads) == 0 || len(downloads) != 2*len(calls) {
		t.Errorf("user-data.sh has %d release URLs and %d fetch_verified calls (each takes a binary and its checksums)", len(downloads), len(calls))
	}
}

// fetch_verified installs a download only when its SHA-256 matches: the
// release's checksums file, or a digest given outright. The test sources
// the script with USER_DATA_SOURCE_ONLY=1 (which then runs nothing but the
// definitions) and fetches file:// URLs: no network.
func TestUserDataFetchVerified(t *testing.T) {
	dir := t.TempDir()
	payload := []byte("#!/bin/sh\necho plugin\n")
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	other := strings.Repeat("0", 64)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}
	bin := write("docker-compose-linux-x86_64", string(payload))
	good := write("good.txt", other+" *buildx-v0.1.0.linux-amd64\n"+digest+" *docker-compose-linux-x86_64\n")
	bad := write("bad.txt", other+"  docker-compose-linux-x86_64\n")
	missing := write("missing.txt", digest+"  something-else\n")
	script, err := filepath.Abs(filepath.Join("aws", "user-data.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tools := t.TempDir()
	for _, name := range []string{"curl", "awk", "sha256sum", "mktemp", "install", "rm"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s, which user-data.sh uses, is missing: %v", name, err)
		}
		if err := os.Symlink(p, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, sums, want string
		ok               bool
	}{
		{"the release's digest matches", good, "", true},
		{"the release's digest differs", bad, "", false},
		{"the release lists no digest for the file", missing, "", false},
		{"a given digest matches, whatever the file says", bad, digest, true},
		{"a given digest differs", good, other, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "docker-compose")
			// USER_DATA_SOURCE_ONLY keeps the script from running main, which
			// would install Docker and start the stack on this machine; and
			// PATH holds only the tools fetch_verified uses, so that even a
			// broken guard could not reach apt-get, dnf, git or docker.
			cmd := exec.Command("bash", "-c", `source "$1" && shift && fetch_verified "$@"`, "bash", script, bin, c.sums, "docker-compose-linux-x86_64", dest, c.want)
			cmd.Env = []string{"USER_DATA_SOURCE_ONLY=1", "PATH=" + tools}
			out, err := cmd.CombinedOutput()
			got, readErr := os.ReadFile(dest)
			if c.ok {
				if err != nil || readErr != nil || !bytes.Equal(got, payload) {
					t.Fatalf("not installed: %v %v\n%s", err, readErr, out)
				}
				if st, _ := os.Stat(dest); st.Mode().Perm() != 0o755 {
					t.Errorf("installed with mode %v, want 0755", st.Mode().Perm())
				}
				return
			}
			if err == nil || readErr == nil {
				t.Fatalf("installed a file whose digest does not match (exit %v)\n%s", err, out)
			}
			if !strings.Contains(string(out), "user-data:") {
				t.Errorf("no message saying why:\n%s", out)
			}
		})
	}
}

// The MSK IAM policy allows every action foodpipe's Kafka requests need, on
// the resource type each action applies to, for the topics and group of the
// default configuration.
func TestMSKIAMPolicy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("aws", "msk-iam-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Version   string
		Statement []struct {
			Sid      string
			Effect   string
			Action   []string
			Resource json.RawMessage
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&policy); err != nil {
		t.Fatal(err)
	}
	// Each action and the resource type MSK checks it on. DescribeTopicDynamicConfiguration
	// is what DescribeConfigs on a topic needs: topic create and describe read the retention.
	want := map[string]string{
		"Connect": "cluster", "DescribeCluster": "cluster", "WriteDataIdempotently": "cluster",
		"DescribeTopic": "topic", "DescribeTopicDynamicConfiguration": "topic", "CreateTopic": "topic",
		"ReadData": "topic", "WriteData": "topic",
		"DescribeGroup": "group", "AlterGroup": "group",
	}
	granted := map[string][]string{} // action → resources
	for _, st := range policy.Statement {
		if st.Effect != "Allow" {
			continue
		}
		var res []string
		if err := json.Unmarshal(st.Resource, &res); err != nil {
			var one string
			if err := json.Unmarshal(st.Resource, &one); err != nil {
				t.Fatalf("statement %s: resource %s", st.Sid, st.Resource)
			}
			res = []string{one}
		}
		for _, a := range st.Action {
			granted[strings.TrimPrefix(a, "kafka-cluster:")] = append(granted[strings.TrimPrefix(a, "kafka-cluster:")], res...)
		}
	}
	c, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	for action, kind := range want {
		res := granted[action]
		if len(res) == 0 {
			t.Errorf("the policy does not allow kafka-cluster:%s", action)
			continue
		}
		for _, r := range res {
			if !strings.Contains(r, ":"+kind+"/") {
				t.Errorf("kafka-cluster:%s is allowed on %s, not on a %s", action, r, kind)
			}
		}
		var names []string
		switch kind {
		case "topic":
			// dlq list and dlq replay read and write the replay markers' topic.
			names = []string{c.Topic, c.DLQTopic, dlq.MarkerTopic(c.DLQTopic)}
		case "group":
			// foodpipe analytics is a group of its own on the same topic.
			names = []string{c.Group, c.AnalyticsGroup}
		}
		for _, n := range names {
			if !slices.ContainsFunc(res, func(r string) bool { return strings.HasSuffix(r, "/"+n) }) {
				t.Errorf("kafka-cluster:%s is not allowed on %s %s", action, kind, n)
			}
		}
	}
}
