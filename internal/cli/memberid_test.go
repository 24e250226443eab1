package cli

import (
	"strings"
	"testing"
)

// The mounts of a Docker container (the daemon's data root under /tmp) and of
// a process on the host, as /proc/self/mountinfo lists them.
const (
	cid             = "4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b"
	dockerMountinfo = `1011 980 0:112 / / ro,relatime master:300 - overlay overlay rw,lowerdir=/tmp/d/data/overlay2/l/X
1012 1011 0:114 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1020 1011 254:0 /tmp/d/data/containers/` + cid + `/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw
1021 1011 254:0 /tmp/d/data/containers/` + cid + `/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
1022 1011 254:0 /tmp/d/data/containers/` + cid + `/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
`
	hostMountinfo = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
`
)

func TestContainerIDIsReadFromTheMountsItsRuntimeMadeForIt(t *testing.T) {
	for _, c := range []struct{ name, mountinfo, want string }{
		{"a Docker container", dockerMountinfo, cid},
		{"a Podman container", "5 1 0:5 /var/lib/containers/storage/overlay-containers/" + cid + "/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n", cid},
		{"a process on the host", hostMountinfo, ""},
		{"a bind mount of a containers directory elsewhere", "5 1 254:0 /srv/containers/" + cid + "/x /data rw - ext4 /dev/vda rw\n", ""},
		{"no mounts readable", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := containerID(c.mountinfo); got != c.want {
				t.Errorf("containerID = %q, want %q", got, c.want)
			}
		})
	}
}

func TestDefaultMemberIDTellsReplicasOnTheHostsNetworkApart(t *testing.T) {
	for _, c := range []struct {
		name, host string
		pid        int
		container  string
		want       string
	}{
		{"a process on the host is host-pid", "vm", 4242, "", "vm-4242"},
		{"a container on its own network, named by its short id, is host-1", cid[:12], 1, cid, cid[:12] + "-1"},
		{"a pod named by Kubernetes, no container id found, is its name and 1", "consumer-7d9f-x2x", 1, "", "consumer-7d9f-x2x-1"},
		{"a container on the host's network is host and its own id", "vm", 1, cid, "vm-" + cid[:12]},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := defaultMemberID(c.host, c.pid, c.container); got != c.want {
				t.Errorf("defaultMemberID = %q, want %q", got, c.want)
			}
		})
	}
	// Two replicas of one compose service on the host's network: same host
	// name, both pid 1, distinct containers.
	other := strings.Repeat("0", 12) + cid[12:]
	a := defaultMemberID("vm", 1, cid)
	b := defaultMemberID("vm", 1, other)
	if a == b {
		t.Errorf("two replicas on the host's network share the id %q", a)
	}
}
