package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startCluster starts a kfake cluster with the given security options and
// returns its address.
func startCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// ping builds a client from o and pings once.
func ping(t *testing.T, o Options) error {
	t.Helper()
	cl, err := kgo.NewClient(ClientOpts(o)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Ping(ctx, cl, o.Brokers, 1)
}

// selfSigned returns a server TLS config for 127.0.0.1 and its certificate in PEM.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "foodpipe test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, certPEM
}

func TestSASLLetsTheRightUserInAndTurnsTheWrongOneAwayClearly(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			addr := startCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "orders", "s3cret-pass"))
			base := Options{Brokers: []string{addr}, ClientID: "test"}

			good := base
			good.SASL = SASL{Mechanism: mech, Username: "orders", Password: "s3cret-pass"}
			if err := ping(t, good); err != nil {
				t.Fatalf("the right credentials were refused: %v", err)
			}

			// A real broker answers SASL_AUTHENTICATION_FAILED; kfake hangs
			// up, which Ping explains.
			bad := base
			bad.SASL = SASL{Mechanism: mech, Username: "orders", Password: "wrong-pass"}
			err := ping(t, bad)
			if !errors.Is(err, ErrUnreachable) || !(errors.Is(err, io.EOF) || errors.Is(err, kerr.SaslAuthenticationFailed)) ||
				!strings.Contains(err.Error(), "SASL") {
				t.Fatalf("wrong password: error %v, want an authentication failure that mentions SASL", err)
			}
			if strings.Contains(err.Error(), "wrong-pass") {
				t.Errorf("error %q shows the password", err)
			}

			if err := ping(t, base); err == nil || !strings.Contains(err.Error(), "SASL") {
				t.Fatalf("a client without SASL: error %v, want a refusal that mentions SASL", err)
			}
		})
	}
}

func TestTLSConnectsWithTheBrokersCAAndRefusesAnUnknownOne(t *testing.T) {
	serverTLS, caPEM := selfSigned(t)
	addr := startCluster(t, kfake.TLS(serverTLS))
	base := Options{Brokers: []string{addr}, ClientID: "test"}

	trusted := base
	trusted.TLS, trusted.TLSCA = true, caPEM
	if err := ping(t, trusted); err != nil {
		t.Fatalf("TLS with the broker's CA: %v", err)
	}

	systemRoots := base
	systemRoots.TLS = true
	err := ping(t, systemRoots)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("TLS with the system roots: error %v, want an unknown-authority error", err)
	}

	if err := ping(t, base); err == nil {
		t.Fatal("a plaintext client reached a TLS broker")
	}
}

func TestTLSAndSCRAMTogether(t *testing.T) {
	serverTLS, caPEM := selfSigned(t)
	addr := startCluster(t, kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser(SASLScramSHA512, "orders", "pw"), kfake.SeedTopics(1, "secured"))
	o := Options{Brokers: []string{addr}, TLS: true, TLSCA: caPEM, SASL: SASL{Mechanism: SASLScramSHA512, Username: "orders", Password: "pw"}}
	cl, err := kgo.NewClient(append(ClientOpts(o), kgo.DefaultProduceTopic("secured"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("order")}).FirstErr(); err != nil {
		t.Fatalf("produce over TLS with SCRAM: %v", err)
	}
}

func TestMSKIAMSignsWithCredentialsFromTheAWSDefaultChain(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFOODPIPETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

	m := saslMechanism(SASL{Mechanism: SASLMSKIAM})
	if m == nil || m.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism = %v", m)
	}
	_, first, err := m.Authenticate(context.Background(), "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098")
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]string
	if err := json.Unmarshal(first, &msg); err != nil {
		t.Fatalf("challenge %q: %v", first, err)
	}
	if msg["action"] != "kafka-cluster:Connect" || !strings.HasPrefix(msg["x-amz-credential"], "AKIDFOODPIPETEST/") ||
		!strings.Contains(msg["x-amz-credential"], "/eu-west-1/kafka-cluster/") || msg["x-amz-security-token"] != "session-token" {
		t.Fatalf("challenge = %v", msg)
	}
	if strings.Contains(string(first), "secret-key") || strings.Contains(base64.StdEncoding.EncodeToString(first), "secret-key") {
		t.Fatal("the secret key is sent")
	}
}

func TestNoSASLAndUnknownMechanisms(t *testing.T) {
	if saslMechanism(SASL{}) != nil || saslMechanism(SASL{Mechanism: SASLNone}) != nil {
		t.Fatal("no mechanism must mean no SASL")
	}
	m := saslMechanism(SASL{Mechanism: "GSSAPI"})
	if _, _, err := m.Authenticate(context.Background(), "h:9092"); err == nil || !strings.Contains(err.Error(), "GSSAPI") {
		t.Fatalf("unknown mechanism: %v", err)
	}
	if n := len(securityOpts(Options{})); n != 0 {
		t.Fatalf("plain options carry %d security options", n)
	}
}
