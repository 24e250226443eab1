package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/joho/godotenv"
)

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
	for _, want := range []string{"docker-compose-plugin", "git clone", "docker-compose.small.yml"} {
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
