// Package deploy holds foodpipe's deployment files (Docker Compose at the
// repository root, Dockerfile, Kubernetes manifests under k8s/, the AWS guide
// under aws/) and the tests that keep them true: every file loads with the
// tool's own parser or decodes strictly into its API type, and every variable
// handed to a foodpipe container is one foodpipe reads, with a value it accepts.
// The tests need neither Docker nor a cluster.
package deploy
