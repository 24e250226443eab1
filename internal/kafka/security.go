package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	awssasl "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms, named as Kafka names them.
const (
	SASLNone        = "none"
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLMSKIAM      = "AWS_MSK_IAM"
)

// SASL is how a client authenticates. Username and Password serve PLAIN and
// SCRAM; AWS_MSK_IAM takes its credentials from the AWS SDK's default chain
// (environment, shared config, web identity, ECS or the EC2 instance role),
// so that nothing secret needs to be configured on an EC2 host or EKS pod.
type SASL struct {
	Mechanism string
	Username  string
	Password  string
}

// securityOpts returns the TLS and SASL options of o; none when o asks for
// neither. The configuration was validated before (config.Validate), so a
// mechanism is known and has its credentials.
func securityOpts(o Options) []kgo.Opt {
	var opts []kgo.Opt
	if o.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(o.TLSCA) > 0 {
			tc.RootCAs = x509.NewCertPool()
			tc.RootCAs.AppendCertsFromPEM(o.TLSCA)
		}
		// kgo sets ServerName to each broker's host when it dials.
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := saslMechanism(o.SASL); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

func saslMechanism(s SASL) sasl.Mechanism {
	switch s.Mechanism {
	case "", SASLNone:
		return nil
	case SASLPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
	case SASLMSKIAM:
		return mskIAM()
	}
	return unknownMechanism(s.Mechanism)
}

// mskIAM signs each SASL session with credentials from the AWS default chain.
// The SDK configuration is loaded on first use and its credentials cache
// refreshes temporary credentials (instance roles, web identity) before they
// expire. The region is taken from the broker's host name by franz-go.
func mskIAM() sasl.Mechanism {
	creds := sync.OnceValues(func() (aws.CredentialsProvider, error) {
		cfg, err := awsconfig.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, err
		}
		return cfg.Credentials, nil
	})
	return awssasl.ManagedStreamingIAM(func(ctx context.Context) (awssasl.Auth, error) {
		p, err := creds()
		if err != nil {
			return awssasl.Auth{}, fmt.Errorf("load AWS configuration: %w", err)
		}
		if p == nil {
			return awssasl.Auth{}, errors.New("no AWS credentials found for AWS_MSK_IAM")
		}
		c, err := p.Retrieve(ctx)
		if err != nil {
			return awssasl.Auth{}, fmt.Errorf("AWS credentials for AWS_MSK_IAM: %w", err)
		}
		return awssasl.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
	})
}

type unknownMechanism string

func (m unknownMechanism) Name() string { return string(m) }

func (m unknownMechanism) Authenticate(context.Context, string) (sasl.Session, []byte, error) {
	return nil, nil, fmt.Errorf("unknown SASL mechanism %q", string(m))
}
